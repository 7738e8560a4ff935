"""A worker's log carries what its operator must act on, not the warnings of libraries about
code paths the portal never takes."""

import subprocess
import sys


def test_loading_the_pdf_signer_prints_no_warning():
    """pyHanko imports cryptography's deprecated DSA key class as its signing module loads; the
    portal signs with RSA and ECDSA only, so a worker drawing its first PDF prints nothing."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "import portal.pdf, portal.pdf.sealing; import pyhanko.sign.signers",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""
