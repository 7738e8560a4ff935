"""Retiring and revoking through the real services, and reading the log's API."""

import base64
import json

from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.certificates.models import Source
from portal.extensions import db
from portal.transparency import services as transparency


def retire(org, quantity=1, beneficiary="测试受益方"):
    certificate = certificates.retire_into_certificate(
        buyers.holding_account(org),
        org,
        quantity,
        beneficiary=beneficiary,
        purpose="voluntary",
        source=Source.HOLDING,
        actor="test",
    )
    db.session.commit()
    return certificate


def revoke(certificate, reason="登记机构更正"):
    certificates.revoke(certificate, reason, actor="test")
    db.session.commit()


def sign():
    head = transparency.sign_new_head()
    db.session.commit()
    return head


def b64(text):
    return base64.b64decode(text)


def leaf(entry):
    return json.loads(b64(entry["leaf_input"]))
