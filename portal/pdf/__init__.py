"""The portal's PDF toolkit: what certificates, invoices and contracts are drawn with.

``page`` holds the A4 frame (colours, margins, the numbered canvas, the continued-page header and
the footer); ``fonts`` the embedded CJK font and safe text; ``text`` one-line flowables and small
text helpers; ``tables`` the shared table styles and the QR box; ``embedded`` the signed data
attached to a PDF and read back from one (what /verify checks); ``drawing`` the one drawing class
whose ``build`` lays a story out. The documents themselves live with their domains
(``certificates.pdf``, ``contracts.invoice_pdf``, ``contracts.contract_pdf``).
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pyHanko 0.38 imports cryptography's DSA key class when its signing module loads, and
# cryptography 51 deprecates DSA, warning on every worker's first PDF. The portal signs and
# accepts RSA and ECDSA only, so the warning says nothing to whoever runs it.
warnings.filterwarnings(
    "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning, module="pyhanko"
)
