"""The registry hand-off: the public interface of the package.

Each rule lives in its own module:

* ``instructions``: the instructions written with every certificate (``instruction_rows``), the
  registry's confirmations (signed records of their own) and rejections, and what a certificate
  shows of them (``certificate_registry``: ``{status, reference, confirmed_at, url}``);
* ``queue``: the staff queue grouped by registry and batch, and the export for the registry's
  forms;
* ``overdue``: when an instruction waits too long (working days), and telling operators once;
* ``statements``: reading a registry account statement (the portal's layout, Verra's export);
* ``reconcile``: the differences by serial range, withholding from sale, and resolving.

Serial formats are the ledger's (``portal.ledger.serials``), so that the catalog's issuance
checks read them the same way.
"""

from portal.registry.instructions import (
    RegistryError,
    certificate_registry,
    confirm,
    instruction_json,
    instruction_rows,
    registry_serials,
    registry_summaries,
    reject,
)
from portal.registry.overdue import overdue_count, report_overdue
from portal.registry.reconcile import import_statement, reconcile, resolve

__all__ = [
    "RegistryError",
    "certificate_registry",
    "confirm",
    "import_statement",
    "instruction_rows",
    "instruction_json",
    "overdue_count",
    "reconcile",
    "registry_serials",
    "registry_summaries",
    "reject",
    "report_overdue",
    "resolve",
]
