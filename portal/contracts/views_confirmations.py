"""The confirmation pages of a delivery and of a termination: what will happen, said before it
does (``portal.core.confirm.ask``); the action runs when the page is confirmed."""

from flask import url_for
from flask_babel import gettext as _

from portal.contracts import services
from portal.contracts.models import DELIVERY_MODE_LABELS, Contract
from portal.core.confirm import ask
from portal.core.i18n import date_text, localized, yuan


def _confirm_delivery(contract: Contract, plan: services.DeliveryPlan):
    buyer = localized(contract.organisation, "name")
    n, seq = plan.quantity, plan.tranche.seq
    consequences = []
    if plan.from_reserve < n:
        consequences.append(
            _(
                "%(n)s t are first taken from inventory into the contract's reserve.",
                n=n - plan.from_reserve,
            )
        )
    if plan.mode == "retire":
        consequences.append(
            _(
                "%(n)s t are retired for %(beneficiary)s and a signed certificate is issued: "
                "retired credits can never be sold or used again.",
                n=n,
                beneficiary=plan.beneficiary,
            )
        )
    else:
        consequences.append(
            _("%(n)s t move from the contract's reserve to the holding of %(buyer)s.", n=n, buyer=buyer)
        )
    consequences += [
        _(
            "Invoice of %(amount)s (%(n)s t at %(price)s) is issued to %(buyer)s, due on %(due)s; "
            "invoices are numbered consecutively and never withdrawn.",
            amount=yuan(plan.amount),
            n=n,
            price=yuan(plan.unit_price),
            buyer=buyer,
            due=date_text(plan.due_on),
        ),
        _("The buyer and the contract's owner are e-mailed about the delivery and the invoice."),
    ]
    facts = [
        (_("Contract"), f"{contract.number} · {contract.title}"),
        (_("Buyer"), buyer),
        (
            _("Tranche"),
            _("Tranche %(seq)s, due on %(due)s", seq=seq, due=date_text(plan.tranche.due)),
        ),
        (_("Tonnes"), _("%(n)s t", n=n)),
        (_("Delivery"), str(DELIVERY_MODE_LABELS.get(plan.mode, plan.mode))),
    ]
    if plan.mode == "retire":
        facts.append((_("Beneficiary"), plan.beneficiary))
    return ask(
        title=_(
            "Deliver %(n)s t of tranche %(seq)s of contract %(number)s?", n=n, seq=seq, number=contract.number
        ),
        consequences=consequences,
        facts=facts,
        button=_("Deliver and issue the invoice"),
        back=url_for("contracts.staff_contract", number=contract.number) + "#deliver",
    )


def _confirm_termination(contract: Contract, reason: str):
    reserved = services.reserved(contract)
    return ask(
        title=_("Terminate contract %(number)s?", number=contract.number),
        consequences=[
            _(
                "The contract ends now: its %(n)s undelivered t will not be delivered.",
                n=contract.undelivered,
            ),
            _("The %(n)s t reserved for it go back to inventory for sale.", n=reserved),
            _("Invoices already issued stay payable; the buyer keeps what was delivered."),
        ],
        facts=[
            (_("Contract"), f"{contract.number} · {contract.title}"),
            (_("Buyer"), localized(contract.organisation, "name")),
            (_("Reason"), reason),
        ],
        button=_("Terminate the contract"),
        back=url_for("contracts.staff_contract", number=contract.number) + "#terminate",
    )
