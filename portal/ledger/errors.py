"""Why a movement was refused. Each error has a stable ``code`` (for the API) and a translated
``message`` naming the problem. A refused movement changes nothing."""

from flask_babel import gettext as _

from portal.core.errors import ServiceError


class LedgerError(ServiceError):
    """A refused movement: ``code`` and ``http_status`` per kind, ``message`` from ``params``."""

    code = "ledger_error"
    http_status = 400
    field = None

    def __init__(self, **params):
        self.params = params
        Exception.__init__(self, f"{self.code} {params}")

    @property
    def status(self) -> int:
        return self.http_status

    @property
    def message(self) -> str:
        return _("The ledger refused the movement.")


class InvalidQuantity(LedgerError):
    code = "invalid_quantity"

    @property
    def message(self):
        if self.params.get("most") is not None:
            return _("The quantity is too large: at most %(most)s t.", most=self.params["most"])
        return _(
            "The quantity must be a whole number of tonnes greater than zero (got %(value)s).",
            value=self.params.get("value"),
        )


class InsufficientCredits(LedgerError):
    code = "insufficient_quantity"
    http_status = 409

    @property
    def message(self):
        return _(
            "Only %(available)s t are available in %(account)s; %(requested)s t were requested.",
            **self.params,
        )


class UnknownAccount(LedgerError):
    code = "unknown_account"
    http_status = 404

    @property
    def message(self):
        return _("There is no account %(account)s.", account=self.params.get("account"))


class UnknownBatch(LedgerError):
    code = "unknown_batch"
    http_status = 404

    @property
    def message(self):
        return _("There is no batch %(batch)s.", batch=self.params.get("batch"))


class TerminalAccount(LedgerError):
    code = "terminal_account"
    http_status = 409

    @property
    def message(self):
        return _("Credits in %(account)s are final and cannot be moved.", account=self.params.get("account"))


class InvalidMovement(LedgerError):
    code = "invalid_movement"

    @property
    def message(self):
        reason = self.params.get("reason")
        if reason == "same_account":
            return _("Source and destination are the same account (%(account)s).", **self.params)
        if reason == "use_retire":
            return _("Use retirement or cancellation to move credits into %(account)s.", **self.params)
        if reason == "buffer_too_large":
            return _(
                "The buffer share must be smaller than the batch (%(buffer)s of %(quantity)s t).",
                **self.params,
            )
        if reason == "not_allowed":
            return _("Credits cannot move from %(source)s to %(account)s.", **self.params)
        if reason == "capacity_mismatch":
            return _("%(account)s already exists with a capacity of %(capacity)s t.", **self.params)
        if reason == "changed":
            return _(
                "The credits in %(account)s changed while they were being moved; nothing was moved. Please try again.",
                **self.params,
            )
        if reason == "already_issued":
            return _("Batch %(batch)s has already been issued into the ledger.", **self.params)
        return _("The movement is not allowed.")


class CapacityExceeded(LedgerError):
    code = "capacity_exceeded"
    http_status = 409

    @property
    def message(self):
        return _(
            "%(account)s may hold at most %(capacity)s t; it holds %(balance)s t and %(requested)s t more were asked for.",
            **self.params,
        )
