"""How the back office shows what the audit log and the ledger journal record.

Both store codes: actors (``user:7``, ``apikey:ab12…``, ``stripe``), ledger accounts
(``hold:order:ord_…``), references (``contract:OC-2026-0001:deliver:2``), event fields as JSON.
People read names and sentences instead: the user's e-mail, "Hold for order ord_…" linking to the
order, "Status: Approved → Suspended". Each :class:`Text` keeps its code (pages put it in a
``title``; CSV exports give it a column of its own). The label tables live beside
their enums (``ORG_STATUS_LABELS`` in ``portal.buyers.models`` …) and the audit vocabulary in
``portal.audit.labels``; this module only looks up the names those codes point at, once per
page, and links to what the signed-in user may open.
"""

import functools
import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from flask import url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import may
from portal.audit.labels import ACTORS, AUDIT_ACTIONS, AUDIT_FIELDS, AUDIT_SUBJECTS
from portal.buyers.models import ORG_STATUS_LABELS, ROLE_LABELS, SECTOR_LABELS, ApiKey, Organisation, User
from portal.catalog.models import PROJECT_STATUS_LABELS, PROJECT_TYPE_LABELS, STANDARD_LABELS, Region
from portal.certificates.models import CERTIFICATE_STATUS_LABELS, SOURCE_LABELS
from portal.contracts.models import (
    CONTRACT_STATUS_LABELS,
    DELIVERY_MODE_LABELS,
    INVOICE_STATUS_LABELS,
    PAYMENT_METHOD_LABELS,
)
from portal.core.i18n import current_language, date_text, datetime_text, localized, yuan
from portal.extensions import db
from portal.ledger.models import ACCOUNT_KIND_LABELS
from portal.offsets.models import ORDER_NOTE_LABELS, ORDER_STATUS_LABELS
from portal.pipeline.models import (
    LAND_TYPE_LABELS,
    PARCEL_STATUS_LABELS,
    PROJECT_STATE_LABELS,
    REVIEW_DECISION_LABELS,
    STAGE_LABELS,
    TENURE_LABELS,
)
from portal.rfq.models import RFQ_STATUS_LABELS, SCHEDULE_KIND_LABELS

#: Values longer than this are cut in the audit view (the CSV export has them whole).
MAX_VALUE = 300


@dataclass(frozen=True)
class Text:
    """Something shown by name: the readable ``label``, the stored ``code``, a link if any."""

    label: str
    code: str
    url: str | None = None

    def __str__(self):
        return self.label


@dataclass(frozen=True)
class Change:
    """One field of an audit event: ``before`` and ``after`` are readable text, None when the
    event recorded no such value on that side (a creation has no before)."""

    field: str
    code: str
    before: str | None
    after: str | None


#: Whole numbers that are read without thousands separators: years and counters.
_YEARS_AND_COUNTERS = frozenset({"year", "version", "tranche", "vintage", "vintage_from", "vintage_to"})


@functools.cache
def _value_tables(subject_type: str) -> dict:
    """Which label table names the values of which field, for events about ``subject_type``."""
    statuses = {
        "organisation": ORG_STATUS_LABELS,
        "order": ORDER_STATUS_LABELS,
        "certificate": CERTIFICATE_STATUS_LABELS,
        "contract": CONTRACT_STATUS_LABELS,
        "invoice": INVOICE_STATUS_LABELS,
        "project": PROJECT_STATUS_LABELS,
        "rfq": RFQ_STATUS_LABELS,
        "parcel": PARCEL_STATUS_LABELS,
    }
    return {
        "status": statuses.get(subject_type, {}),
        "sector": SECTOR_LABELS,
        "role": ROLE_LABELS,
        "type": PROJECT_TYPE_LABELS,
        "project_type": PROJECT_TYPE_LABELS,
        "project_types": PROJECT_TYPE_LABELS,
        "standard": STANDARD_LABELS,
        "standards": STANDARD_LABELS,
        "schedule": SCHEDULE_KIND_LABELS,
        "delivery": DELIVERY_MODE_LABELS,
        "mode": DELIVERY_MODE_LABELS,
        "method": PAYMENT_METHOD_LABELS,
        "source": SOURCE_LABELS,
        "note": ORDER_NOTE_LABELS,
        "stage": STAGE_LABELS,
        "decision": REVIEW_DECISION_LABELS,
        "land_type": LAND_TYPE_LABELS,
        "tenure": TENURE_LABELS,
        "state": PROJECT_STATE_LABELS if subject_type == "pipeline_project" else {},
    }


#: A recorded date (``2025-11-11``) or moment (``2025-11-11T08:00:00+00:00``), shown as people
#: read dates in the page's language.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def _when(value: str) -> str | None:
    """``value`` as a date or a moment in the page's language, or None if it is neither."""
    try:
        if _ISO_DATE.fullmatch(value):
            return date_text(date.fromisoformat(value))
        if _ISO_MOMENT.fullmatch(value):
            return datetime_text(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return None


def _loads(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _raw(text: str | None) -> str | None:
    return None if text is None else _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _listed(items) -> str:
    return ("、" if current_language() == "zh" else ", ").join(items)


class Reader:
    """Names for the actors, accounts, references and subjects of one page of rows: every name
    is looked up once, in a few queries, before the page is drawn."""

    def __init__(self, *, actors=(), usccs=(), user_ids=(), key_prefixes=(), contracts=()):
        self._users: dict[int, str] = {}
        self._keys: dict[str, str] = {}
        self._orgs: dict[str, Organisation] = {}
        self._regions: dict[str, str] | None = None
        self._contracts: set[str] = set()
        user_ids, key_prefixes = set(user_ids), set(key_prefixes)
        for actor in actors:
            kind, _sep, rest = (actor or "").partition(":")
            if kind == "user" and rest.isascii() and rest.isdigit() and len(rest) < 10:
                user_ids.add(int(rest))
            elif kind == "apikey" and rest:
                key_prefixes.add(rest[:16])
        if user_ids:
            self._users = dict(
                db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids))).all()
            )
        if key_prefixes:
            for key in db.session.scalars(select(ApiKey).where(ApiKey.prefix.in_(key_prefixes))):
                owner = localized(key.organisation, "name") if key.organisation else key.user.email
                self._keys[key.prefix] = owner
        usccs = {u for u in usccs if u}
        if usccs:
            self._orgs = {
                o.uscc: o
                for o in db.session.scalars(select(Organisation).where(Organisation.uscc.in_(usccs)))
            }
        if contracts:
            from portal.contracts.models import Contract

            self._contracts = set(
                db.session.scalars(select(Contract.number).where(Contract.number.in_(set(contracts))))
            )

    # --- for the audit log ---------------------------------------------------------------------

    @classmethod
    def for_events(cls, events, actors=()) -> "Reader":
        """For these audit events (and ``actors`` shown beside them)."""
        usccs, user_ids, prefixes, contracts = set(), set(), set(), set()
        for e in events:
            if e.subject_type == "organisation":
                usccs.add(e.subject_id)
            elif e.subject_type == "user" and e.subject_id.isdigit() and len(e.subject_id) < 10:
                user_ids.add(int(e.subject_id))
            elif e.subject_type == "apikey":
                prefixes.add(e.subject_id)
            elif e.subject_type == "contract":
                contracts.add(e.subject_id)
            for side in (_loads(e.before), _loads(e.after)):
                if isinstance(side, dict) and isinstance(side.get("organisation"), str):
                    usccs.add(side["organisation"])
        return cls(
            actors={e.actor for e in events} | set(actors),
            usccs=usccs,
            user_ids=user_ids,
            key_prefixes=prefixes,
            contracts=contracts,
        )

    def action(self, code: str) -> Text:
        return Text(str(AUDIT_ACTIONS.get(code, code)), code)

    def subject(self, subject_type: str, subject_id: str) -> Text:
        kind = str(AUDIT_SUBJECTS.get(subject_type, subject_type))
        code = f"{subject_type}:{subject_id}"
        if subject_type == "organisation":
            return Text(self.organisation(subject_id), code)
        if subject_type == "user":
            email = (
                self._users.get(int(subject_id)) if subject_id.isdigit() and len(subject_id) < 10 else None
            )
            return Text(email or _("User %(id)s", id=subject_id), code)
        if subject_type == "apikey":
            return Text(_("API key %(prefix)s", prefix=subject_id), code)
        if subject_type == "sharing_rule":
            return Text(_("Rule %(id)s", id=subject_id), code, self._url("revenue.read", "revenue.rules"))
        if subject_type == "payment":
            return Text(kind, code)
        url = {
            "project": lambda: self._url("projects.read", "staff.project", code=subject_id),
            "batch": lambda: self._url("journal.read", "staff.journal", batch=subject_id),
            "certificate": lambda: url_for("certificates.show", number=subject_id),
            "order": lambda: self._url("orders.read_all", "offsets.order", public_id=subject_id),
            "contract": lambda: self._contract_url(subject_id),
            "invoice": lambda: self._url("contracts.read_all", "contracts.staff_invoice", number=subject_id),
            "rfq": lambda: self._url("rfq.read_all", "rfq.staff_request", number=subject_id),
        }.get(subject_type, lambda: None)()
        return Text(f"{kind} {subject_id}", code, url)

    def changes(self, event) -> list[Change]:
        """What the event changed, field by field, in the order of ``AUDIT_FIELDS``;
        fields an update left as they were are left out."""
        before, after = _loads(event.before), _loads(event.after)
        if not all(side is None or isinstance(side, dict) for side in (before, after)):
            return [Change(_("Details"), "", _raw(event.before), _raw(event.after))]
        order = {name: i for i, name in enumerate(AUDIT_FIELDS)}
        names = sorted(set(before or {}) | set(after or {}), key=lambda n: (order.get(n, len(order)), n))
        shown = []
        for name in names:
            if before and after and name in before and name in after and before[name] == after[name]:
                continue  # unchanged
            shown.append(
                Change(
                    str(AUDIT_FIELDS.get(name, name)),
                    name,
                    self._side(before, name, event.subject_type),
                    self._side(after, name, event.subject_type),
                )
            )
        return shown

    def _side(self, values: dict | None, name: str, subject_type: str) -> str | None:
        return None if values is None or name not in values else self.value(name, values[name], subject_type)

    def value(self, field: str, value, subject_type: str = "") -> str:
        """A recorded value as people read it: labels for codes, names for codes of things."""
        if value is None or value == "" or value == [] or value == {}:
            return "—"
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        table = _value_tables(subject_type).get(field)
        if table:
            if isinstance(value, list):
                return _listed(str(table.get(v, v)) for v in map(str, value))
            if isinstance(value, str):
                return str(table.get(value, value))
        if field in ("amount", "price_per_t", "price_expectation") and isinstance(value, str | int):
            try:
                return yuan(value)
            except ArithmeticError:
                pass
        if type(value) is int and field not in _YEARS_AND_COUNTERS:
            return format_decimal(value)
        if field in ("region_code", "counties", "county"):
            names = self._region_names()
            values = value if isinstance(value, list) else [value]
            return _listed(names.get(str(v), str(v)) for v in values)
        if field == "projects" and isinstance(value, list):
            return _listed(map(str, value))
        if field == "organisation" and isinstance(value, str):
            return self.organisation(value)
        if field == "tranches" and isinstance(value, list):
            return _cut(
                "; ".join(
                    _("%(due)s: %(n)s t", due=self.value("due", t.get("due", "?")), n=t.get("quantity", "?"))
                    if isinstance(t, dict)
                    else str(t)
                    for t in value
                )
            )
        if field == "year_prices" and isinstance(value, dict):
            return "; ".join(f"{year}: {price}" for year, price in value.items())
        if field == "lines" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return _cut("; ".join(self._forecast_line(line) for line in value))
        if isinstance(value, str) and (when := _when(value)) is not None:
            return when
        if isinstance(value, list | dict):
            return _cut(json.dumps(value, ensure_ascii=False))
        return _cut(str(value))

    @staticmethod
    def _forecast_line(line: dict) -> str:
        """A forecast's line: "2027: 436 t (349–545 t)"."""
        return _(
            "%(vintage)s: %(expected)s t (%(low)s–%(high)s t)",
            vintage=line.get("vintage", "?"),
            expected=line.get("expected_t", "?"),
            low=line.get("low_t", "?"),
            high=line.get("high_t", "?"),
        )

    def _region_names(self) -> dict[str, str]:
        if self._regions is None:
            self._regions = {r.code: localized(r, "name") for r in db.session.scalars(select(Region))}
        return self._regions

    # --- for the ledger journal ----------------------------------------------------------------

    @classmethod
    def for_entries(cls, entries, accounts) -> "Reader":
        """``entries``: (LedgerEntry, batch code) rows; ``accounts``: their accounts by id."""
        usccs = {a.ref for a in accounts.values() if a.kind == "holding"}
        contracts = {a.ref.removeprefix("contract:") for a in accounts.values() if a.kind == "reserve"}
        for e, _code in entries:
            ref = e.reference or ""
            if ref.startswith("delivery:"):
                usccs.add(ref.removeprefix("delivery:"))
            elif ref.startswith("contract:"):
                contracts.add(ref.split(":")[1])
        return cls(actors={e.actor for e, _code in entries}, usccs=usccs, contracts=contracts)

    def account(self, account) -> Text:
        """A ledger account: "Inventory for sale", "Hold for order ord_…" (a link to the order) …"""
        if account is None:
            return Text("—", "")
        code = str(account)
        ref = account.ref or ""
        if account.kind == "hold" and ref.startswith("order:"):
            order = ref.removeprefix("order:")
            return Text(
                _("Hold for order %(order)s", order=order),
                code,
                self._url("orders.read_all", "offsets.order", public_id=order),
            )
        if account.kind == "reserve" and ref.startswith("contract:"):
            number = ref.removeprefix("contract:")
            return Text(_("Reserve of contract %(number)s", number=number), code, self._contract_url(number))
        if account.kind == "holding":
            return Text(_("Holding of %(name)s", name=self.organisation(ref)), code)
        label = str(ACCOUNT_KIND_LABELS.get(account.kind, account.kind))
        return Text(f"{label} {ref}" if ref else label, code)

    def reference(self, reference: str) -> Text:
        """What caused a ledger movement, as a sentence (the code stays the filter's value)."""
        parts = (reference or "").split(":")
        head, rest = parts[0], parts[1:]
        if head == "order" and len(rest) == 1:
            return Text(
                _("Order %(order)s", order=rest[0]),
                reference,
                self._url("orders.read_all", "offsets.order", public_id=rest[0]),
            )
        if head == "certificate" and len(rest) == 1:
            number, _plus, more = rest[0].partition("+")
            label = (
                _("Certificates %(number)s and %(n)s more", number=number, n=more)
                if more
                else _("Certificate %(number)s", number=number)
            )
            return Text(label, reference, url_for("certificates.show", number=number))
        if head == "contract" and rest:
            number, what = rest[0], rest[1:]
            url = self._contract_url(number)
            if what == ["reserve"]:
                return Text(_("Reserve top-up for contract %(number)s", number=number), reference, url)
            if len(what) == 2 and what[0] == "deliver":
                return Text(
                    _("Delivery of tranche %(seq)s of contract %(number)s", seq=what[1], number=number),
                    reference,
                    url,
                )
            if what == ["terminated"]:
                return Text(
                    _("Reserve released: contract %(number)s terminated", number=number), reference, url
                )
            if what == ["amended"]:
                return Text(_("Reserve released: contract %(number)s amended", number=number), reference, url)
        if head == "issuance" and rest:
            url = self._url("journal.read", "staff.journal", batch=rest[0])
            if rest[1:] == ["reserve"]:
                return Text(_("Reserved from new batch %(code)s", code=rest[0]), reference, url)
            if len(rest) == 1:
                return Text(_("Issuance of batch %(code)s", code=rest[0]), reference, url)
        if head == "delivery" and len(rest) == 1:
            return Text(_("Offline sale to %(name)s", name=self.organisation(rest[0])), reference)
        return Text(reference or "—", reference or "")

    # --- shared --------------------------------------------------------------------------------

    def actor(self, actor: str) -> Text:
        """Who did it: a user's e-mail, an API key and its owner, or a fixed actor's name."""
        actor = actor or ""
        kind, _sep, rest = actor.partition(":")
        if kind == "user" and rest.isascii() and rest.isdigit() and len(rest) < 10:
            return Text(self._users.get(int(rest)) or _("User %(id)s", id=rest), actor)
        if kind == "apikey" and rest:
            owner = self._keys.get(rest)
            return Text(
                _("API key %(prefix)s of %(owner)s", prefix=rest, owner=owner)
                if owner
                else _("API key %(prefix)s", prefix=rest),
                actor,
            )
        if kind == "cli" and rest:
            return Text(_("Command line (flask %(command)s)", command=rest), actor)
        return Text(str(ACTORS.get(actor, actor)), actor)

    def organisation(self, uscc: str) -> str:
        org = self._orgs.get(uscc)
        return localized(org, "name") if org is not None else uscc

    def _contract_url(self, number: str) -> str | None:
        if number not in self._contracts:  # a deleted draft has no page
            return None
        return self._url("contracts.read_all", "contracts.staff_contract", number=number)

    @staticmethod
    def _url(permission: str, endpoint: str, **values) -> str | None:
        return url_for(endpoint, **values) if may(current_user, permission) else None
