"""Imports every model module, so the mapper registry and migrations see them all."""

from portal.alliance import models as alliance_models  # noqa: F401
from portal.audit import models as audit_models  # noqa: F401
from portal.buyers import models as buyers_models  # noqa: F401
from portal.catalog import models as catalog_models  # noqa: F401
from portal.certificates import models as certificates_models  # noqa: F401
from portal.contracts import models as contracts_models  # noqa: F401
from portal.core import mail as mail_models  # noqa: F401
from portal.core import throttle as throttle_models  # noqa: F401
from portal.fapiao import models as fapiao_models  # noqa: F401
from portal.jobs import models as jobs_models  # noqa: F401
from portal.ledger import models as ledger_models  # noqa: F401
from portal.offsets import models as offsets_models  # noqa: F401
from portal.payments import models as payments_models  # noqa: F401
from portal.pipeline import models as pipeline_models  # noqa: F401
from portal.registry import models as registry_models  # noqa: F401
from portal.revenue import models as revenue_models  # noqa: F401
from portal.rfq import models as rfq_models  # noqa: F401
from portal.transparency import models as transparency_models  # noqa: F401
from portal.webhooks import models as webhooks_models  # noqa: F401
