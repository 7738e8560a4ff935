"""The seller: the operator who sells the credits and is paid for them, as configured once
(``SELLER_*`` in ``portal.config``, overridden by ``PORTAL_SELLER_*``). Orders, receipts,
invoices, contracts and their PDFs name it from here: its legal name, its unified social credit
code and the bank account buyers pay into. The threshold above which an order may be paid by
bank transfer (对公转账) and how long such an order holds its credits are configured beside it.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import current_app, has_app_context

from portal.config import DEFAULTS

#: The marketplace through which the seller sells: the issuer its certificates name, the
#: letterhead of its contracts. The pages name it through their translations of
#: "Chifeng Carbon Sink Marketplace", which a test holds to these.
PLATFORM_ZH = "赤峰市生态碳汇交易平台"
PLATFORM_EN = "Chifeng Carbon Sink Marketplace"


@dataclass(frozen=True)
class Seller:
    name_zh: str
    name_en: str
    #: 统一社会信用代码: what a fapiao and a bank name the seller by.
    uscc: str
    #: The payee's bank (开户行) and account number (账号) for transfers.
    bank: str
    account: str
    #: Orders above this amount (yuan) may be paid by bank transfer.
    transfer_threshold: Decimal
    #: Days an order paid by bank transfer holds its credits, counted from when it was placed.
    transfer_hold_days: int

    @property
    def account_display(self) -> str:
        """The account number in groups of four, as banks print it."""
        digits = self.account.replace(" ", "")
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _decimal(value, default: Decimal) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default
    return amount if amount.is_finite() and amount > 0 else default


def seller() -> Seller:
    """The seller as configured (the defaults outside an application context)."""
    config = current_app.config if has_app_context() else DEFAULTS
    get = lambda name: config.get(name, DEFAULTS[name])  # noqa: E731
    try:
        hold_days = max(1, int(get("BANK_TRANSFER_HOLD_DAYS")))
    except (TypeError, ValueError):
        hold_days = DEFAULTS["BANK_TRANSFER_HOLD_DAYS"]
    return Seller(
        name_zh=str(get("SELLER_NAME_ZH")),
        name_en=str(get("SELLER_NAME_EN")),
        uscc=str(get("SELLER_USCC")),
        bank=str(get("SELLER_BANK")),
        account=str(get("SELLER_BANK_ACCOUNT")),
        transfer_threshold=_decimal(
            get("BANK_TRANSFER_THRESHOLD"), Decimal(str(DEFAULTS["BANK_TRANSFER_THRESHOLD"]))
        ),
        transfer_hold_days=hold_days,
    )
