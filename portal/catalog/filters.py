"""The catalog's filters and sort, parsed from query-string arguments: strictly for the API,
leniently for the web page."""

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.catalog.models import Listing, Project, ProjectType, Standard
from portal.core import numbers
from portal.core.money import MAX_PRICE_PER_T
from portal.ledger.models import MAX_QUANTITY as LEDGER_MAX_QUANTITY
from portal.ledger.models import Batch

SORTS = {
    # Whole index order (ix_batches_vintage), so that a page needs only its own rows.
    "vintage_desc": (Batch.vintage_start.desc(), Batch.vintage_end.desc(), Batch.id.desc()),
    "vintage_asc": (Batch.vintage_start, Batch.vintage_end, Batch.id),
    "price_asc": (Listing.price_per_t, Batch.id),
    "price_desc": (Listing.price_per_t.desc(), Batch.id),
    "available_desc": ("available_desc", Batch.id),
    "project": (Project.code, Batch.vintage_start, Batch.id),
}
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
MAX_QUANTITY = LEDGER_MAX_QUANTITY
MAX_TEXT = 200
MAX_PRICE = MAX_PRICE_PER_T


#: How each sort reads in the catalog's sort menu.
SORT_LABELS = {
    "vintage_desc": _l("Newest vintage first"),
    "vintage_asc": _l("Oldest vintage first"),
    "price_asc": _l("Price: low to high"),
    "price_desc": _l("Price: high to low"),
    "available_desc": _l("Most available first"),
    "project": _l("Project code"),
}
FIELD_LABELS = {
    "standard": _l("Standard"),
    "project_type": _l("Project type"),
    "county": _l("County"),
    "vintage": _l("Vintage"),
    "methodology": _l("Methodology"),
    "min_available": _l("At least (t available)"),
    "price_min": _l("Lowest price"),
    "price_max": _l("Highest price"),
    "sort": _l("Sort by"),
    "page": _l("Page"),
    "per_page": _l("Results per page"),
}


def _field(name: str) -> str:
    return f"{FIELD_LABELS[name]} ({name})"


class FilterError(ValueError):
    """A filter value that cannot be used; ``message`` is translated and names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(message)


@dataclass
class CatalogFilters:
    standard: str | None = None
    project_type: str | None = None
    county: str | None = None
    vintage: int | None = None
    methodology: str | None = None
    min_available: int | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    sort: str = "vintage_desc"
    page: int = 1
    per_page: int = 20
    default_per_page: int = 20

    @classmethod
    def from_args(cls, args, default_per_page: int = 20) -> "CatalogFilters":
        """Parse query-string arguments strictly (the API): the first bad value raises FilterError."""
        filters, errors = cls.parse(args, default_per_page)
        if errors:
            raise errors[0]
        return filters

    @classmethod
    def parse(cls, args, default_per_page: int = 20) -> tuple["CatalogFilters", list[FilterError]]:
        """Parse query-string arguments leniently (the web page): empty values mean "any"; a bad
        value is dropped and reported, the other filters are kept."""
        errors: list[FilterError] = []

        def text(name):
            value = (args.get(name) or "").strip()
            if len(value) > MAX_TEXT:
                errors.append(FilterError(name, _("%(field)s is too long.", field=_field(name))))
                return None
            return value or None

        def whole(name, low, high):
            value = text(name)
            if value is None:
                return None
            # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
            if not (value.isascii() and value.isdigit() and len(value) <= 12 and low <= int(value) <= high):
                errors.append(
                    FilterError(
                        name,
                        _(
                            "%(field)s must be a whole number from %(low)s to %(high)s.",
                            field=_field(name),
                            low=low,
                            high=high,
                        ),
                    )
                )
                return None
            return int(value)

        def money(name):
            value = text(name)
            if value is None:
                return None
            amount = numbers.money(value, Decimal(0), MAX_PRICE)
            if amount is None:
                errors.append(
                    FilterError(
                        name, _("%(field)s must be an amount in yuan, such as 68.00.", field=_field(name))
                    )
                )
            return amount

        def choice(name, allowed):
            value = text(name)
            if value is not None and value not in allowed:
                errors.append(
                    FilterError(
                        name,
                        _(
                            "%(field)s must be one of: %(allowed)s.",
                            field=_field(name),
                            allowed=", ".join(sorted(allowed)),
                        ),
                    )
                )
                return None
            return value

        filters = cls(
            standard=choice("standard", {s.value for s in Standard}),
            project_type=choice("project_type", {t.value for t in ProjectType}),
            county=text("county"),
            vintage=whole("vintage", 2000, 2100),
            methodology=text("methodology"),
            min_available=whole("min_available", 0, MAX_QUANTITY),
            price_min=money("price_min"),
            price_max=money("price_max"),
            sort=choice("sort", set(SORTS)) or "vintage_desc",
            page=whole("page", 1, MAX_PAGE) or 1,
            per_page=whole("per_page", 1, MAX_PER_PAGE) or default_per_page,
            default_per_page=default_per_page,
        )
        if (
            filters.price_min is not None
            and filters.price_max is not None
            and filters.price_min > filters.price_max
        ):
            errors.append(FilterError("price_min", _("The lowest price is above the highest price.")))
            filters.price_min = filters.price_max = None
        return filters, errors

    def args(self, **changes) -> dict:
        """The filters as query-string arguments (for links that keep them), with changes."""
        values = {
            "standard": self.standard,
            "project_type": self.project_type,
            "county": self.county,
            "vintage": self.vintage,
            "methodology": self.methodology,
            "min_available": self.min_available,
            "price_min": self.price_min,
            "price_max": self.price_max,
            "sort": None if self.sort == "vintage_desc" else self.sort,
            "page": self.page,
            "per_page": None if self.per_page == self.default_per_page else self.per_page,
        }
        values.update(changes)
        if values.get("page") == 1:
            values["page"] = None
        return {k: v for k, v in values.items() if v is not None}

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (
                self.standard,
                self.project_type,
                self.county,
                self.vintage,
                self.methodology,
                self.min_available,
                self.price_min,
                self.price_max,
            )
        )
