"""The platform has one name: the one its pages give is the one its certificates are signed
with and its PDFs print."""

import json

from flask_babel import force_locale, gettext

from portal.certificates import services
from portal.core.seller import PLATFORM_EN, PLATFORM_ZH


def test_the_pages_name_the_platform_as_its_certificates_do(app):
    with app.test_request_context():
        with force_locale("zh_Hans_CN"):
            assert gettext("Chifeng Carbon Sink Marketplace") == PLATFORM_ZH
        with force_locale("en"):
            assert gettext("Chifeng Carbon Sink Marketplace") == PLATFORM_EN


def test_a_new_certificate_is_signed_with_that_name(held, app, client):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 2, beneficiary="X", purpose="voluntary", actor="test")
    assert json.loads(cert.payload)["issuer"] == {"zh": PLATFORM_ZH, "en": PLATFORM_EN}
    page = client.get(f"/certificates/{cert.number}?lang=zh").get_data(as_text=True)
    assert PLATFORM_ZH in page
