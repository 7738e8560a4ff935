"""What the buyers' rules raise when they refuse something: ``ServiceError``s, as every package's."""

from portal.core.errors import ServiceError


class OrganisationError(ServiceError):
    """An organisation, user, token or key the rules refuse (400 unless said otherwise)."""


class SignInError(ServiceError):
    """Signing in (or asking for a link) refused for now: too many attempts (429)."""

    def __init__(self, message: str, status: int):
        super().__init__("sign_in_refused", message, status)
