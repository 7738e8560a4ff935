"""Paying with Alipay and WeChat Pay: confirming a PaymentIntent with the wallet, and what the
buyer must do next, read from Stripe's ``next_action``.

* ``alipay_handle_redirect``: the browser goes to Alipay and comes back to ``return_url``;
* ``wechat_pay_display_qr_code``: the page shows the QR code for the buyer to scan in WeChat,
  and polls the order until the signed webhook has settled it.

The embedded backend (localstripe) has no wallets: there the same steps lead to the **test
wallet** page of this package, clearly marked, which pays the intent with Stripe's test card (or
declines it) through the same client, so that the same signed webhooks settle the order. The
page's address is signed (it names the intent, the wallet and where to return), so it cannot be
pointed at another intent or another site.
"""

import logging
from dataclasses import dataclass

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.payments.services import PaymentError, client, embedded

log = logging.getLogger(__name__)

#: The wallets offered beside the card (Stripe's payment method types).
WALLETS = ("alipay", "wechat_pay")
#: How long a test wallet page's address stays usable (the longest hold is 30 minutes).
TEST_WALLET_MAX_AGE_S = 45 * 60


@dataclass(frozen=True)
class NextStep:
    """What the buyer does next: ``redirect`` to ``url``; scan the ``qr`` code of ``data`` (or
    Stripe's own ``image``, a data: URL); or ``wait`` for the webhook."""

    kind: str
    url: str = ""
    data: str = ""
    image: str = ""


def next_step(intent) -> NextStep:
    """The next step of a PaymentIntent Stripe returned (a dict or a StripeObject)."""
    if hasattr(intent, "to_dict"):  # a StripeObject is not a dict (its .get is refused)
        intent = intent.to_dict()
    status = intent.get("status")
    action = intent.get("next_action") or {}
    kind = action.get("type")
    if status == "requires_action" and kind == "alipay_handle_redirect":
        return NextStep("redirect", url=str(action["alipay_handle_redirect"]["url"]))
    if status == "requires_action" and kind == "wechat_pay_display_qr_code":
        shown = action["wechat_pay_display_qr_code"]
        return NextStep("qr", data=str(shown.get("data") or ""), image=str(shown.get("image_data_url") or ""))
    if status == "requires_action" and kind == "redirect_to_url":
        return NextStep("redirect", url=str(action["redirect_to_url"]["url"]))
    if status in ("processing", "succeeded", "requires_capture"):
        return NextStep("wait")
    raise PaymentError(f"unexpected PaymentIntent state {status} / {kind}")


def confirm_params(method: str, return_url: str) -> dict:
    """The exact parameters that confirm an intent with ``method`` (tested as such: localstripe
    cannot show that Stripe accepts them)."""
    if method not in WALLETS:
        raise ValueError(method)
    params = {"payment_method_data": {"type": method}}
    if method == "alipay":
        params["return_url"] = return_url
    else:  # WeChat Pay on a web page: a QR code to scan with the phone
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    return params


def start_wallet(intent_id: str, method: str, *, return_url: str) -> NextStep:
    """Confirm the intent with ``method`` and say what the buyer does next."""
    import stripe

    if embedded():
        return _test_wallet_step(intent_id, method, return_url)
    try:
        intent = client().v1.payment_intents.confirm(intent_id, params=confirm_params(method, return_url))
    except stripe.StripeError as exc:
        log.warning("confirming %s with %s failed: %s", intent_id, method, exc)
        raise PaymentError(str(exc)) from None
    return next_step(intent)


def current_step(intent_id: str, method: str, *, return_url: str) -> NextStep:
    """The step a wallet payment already started waits on (to show the QR code again)."""
    import stripe

    if embedded():
        return _test_wallet_step(intent_id, method, return_url)
    try:
        return next_step(client().v1.payment_intents.retrieve(intent_id))
    except stripe.StripeError as exc:
        raise PaymentError(str(exc)) from None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="portal.payments.test-wallet")


def _test_wallet_step(intent_id: str, method: str, return_url: str) -> NextStep:
    if method not in WALLETS:
        raise ValueError(method)
    token = _serializer().dumps({"i": intent_id, "m": method, "r": return_url})
    url = url_for("payments.test_wallet", token=token, _external=True)
    return NextStep("redirect", url=url) if method == "alipay" else NextStep("qr", data=url)


def read_test_wallet_token(token: str) -> dict | None:
    """{"i": intent id, "m": wallet, "r": return address} from a test wallet address, or None."""
    try:
        found = _serializer().loads(token, max_age=TEST_WALLET_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(found, dict) or found.get("m") not in WALLETS:
        return None
    return found
