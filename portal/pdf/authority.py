"""The portal's document-signing certificate: the X.509 identity that signs every PDF the portal
draws (certificates, invoices, contracts) with a standard PDF signature over the whole file.

Production configures files (``PDF_SIGNING_CERT_FILE``, ``PDF_SIGNING_KEY_FILE`` and
``PDF_SIGNING_CHAIN_FILE``: a certificate issued by a certification authority, its private key,
and the authority's chain up to its root). Without them the portal is its own small authority:
on first use it generates a root certificate ("the portal CA") and a signing certificate issued
by it into ``document-signing/`` in the instance folder, as it does for the Ed25519 key. Both use
RSA 3072 with SHA-256, which every common PDF reader (Adobe, Foxit, poppler, pyHanko) validates.

The chain is published (``GET /api/v1/signing-keys`` and ``/signing-chain.pem``) so that anyone
can add the root to their reader's trusted certificates; /verify trusts exactly these roots.
"""

import datetime as dt
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask import current_app

from portal.core.seller import PLATFORM_EN

log = logging.getLogger(__name__)

#: The key types the portal signs PDFs with (what common readers validate).
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: The embedded default's folder in the instance folder, and its four files.
FOLDER = "document-signing"
CA_CERT, CA_KEY, SIGNER_CERT, SIGNER_KEY = "ca.pem", "ca-key.pem", "signer.pem", "signer-key.pem"
KEY_BITS = 3072
CA_YEARS, SIGNER_YEARS = 30, 20


@dataclass(frozen=True)
class Authority:
    """The signing certificate, its private key (loaded: checking an RSA key on load costs
    about 0.1 s, paid once per process), and the chain above it (root last)."""

    private_key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """The certificates a verifier trusts: the self-signed ones of the chain, else its top."""
        everything = (self.cert, *self.chain)
        own = tuple(c for c in everything if c.issuer == c.subject)
        return own or everything[-1:]

    def chain_pem(self) -> str:
        """The signing certificate and the chain above it, PEM, root last."""
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in (self.cert, *self.chain)
        )

    def roots_der(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.roots]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, PLATFORM_EN),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate(folder: Path, now: dt.datetime | None = None) -> None:
    """A root certificate and a signing certificate issued by it, into ``folder`` (made here).

    The four files appear together or not at all: written into a folder aside, which is then
    renamed into place; of two workers generating at once, the first rename wins and both use it.
    """
    now = now or dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=1)  # a verifier whose clock is a little behind still accepts
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    ca_name = _name(f"{PLATFORM_EN} Document CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{PLATFORM_EN} Document Signing"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # non-repudiation: what document signatures assert
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))  # mode 700
    try:
        for name, content in (
            (CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM)),
            (CA_KEY, _pem_key(ca_key)),
            (SIGNER_CERT, cert.public_bytes(serialization.Encoding.PEM)),
            (SIGNER_KEY, _pem_key(key)),
        ):
            fd = os.open(aside / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.rename(aside, folder)
        except OSError:  # another worker's folder is in place (rename onto a non-empty folder)
            if not (folder / SIGNER_KEY).exists():
                raise
            return
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    log.info("generated the portal's document-signing CA and certificate in %s", folder)


def _paths() -> tuple[Path, Path, Path | None]:
    """(certificate, key, chain or None) as configured, else the embedded default's."""
    config = current_app.config
    cert, key = config.get("PDF_SIGNING_CERT_FILE"), config.get("PDF_SIGNING_KEY_FILE")
    if cert or key:
        if not (cert and key):
            raise RuntimeError("PDF_SIGNING_CERT_FILE and PDF_SIGNING_KEY_FILE are set together")
        chain = config.get("PDF_SIGNING_CHAIN_FILE")
        return Path(cert), Path(key), Path(chain) if chain else None
    folder = Path(current_app.instance_path) / FOLDER
    if not (folder / SIGNER_KEY).exists():
        generate(folder)
    return folder / SIGNER_CERT, folder / SIGNER_KEY, folder / CA_CERT


def _identity(*paths: Path | None) -> tuple:
    found = []
    for path in paths:
        if path is None:
            found.append(None)
            continue
        st = path.stat()
        found.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def load(cert_path: Path, key_path: Path, chain_path: Path | None) -> Authority:
    """The authority from PEM files; refuses a key that does not belong to the certificate."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{key_path} holds neither an RSA nor an ECDSA private key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != cert.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise RuntimeError(f"{key_path} is not the private key of the certificate in {cert_path}")
    chain = tuple(x509.load_pem_x509_certificates(chain_path.read_bytes())) if chain_path else ()
    chain = tuple(c for c in chain if c != cert)
    return Authority(private_key=key, cert=cert, chain=chain)


def current_authority() -> Authority:
    """The document-signing authority: loaded once per process, and again when a file changes
    (one ``stat`` per file and signature), so replacing the files rotates it in every worker."""
    paths = _paths()
    identity = _identity(*paths)
    cache = current_app.extensions.setdefault("portal.pdf_authority", {})
    if cache.get("identity") != identity:
        cache["authority"] = load(*paths)
        cache["identity"] = identity
    return cache["authority"]


def known_certificates() -> list[bytes]:
    """The certificates /verify trusts as the portal's (DER): the current chain (signing
    certificate, intermediates, root), and those kept in ``PDF_SIGNING_TRUSTED_ROOTS_FILE`` (PEM)
    so that PDFs signed before a change of authority still verify."""
    current = current_authority()
    found = [c.public_bytes(serialization.Encoding.DER) for c in (current.cert, *current.chain)]
    extra = current_app.config.get("PDF_SIGNING_TRUSTED_ROOTS_FILE")
    if extra:
        for cert in x509.load_pem_x509_certificates(Path(extra).read_bytes()):
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in found:
                found.append(der)
    return found
