"""Who may do what: the one place permissions are decided.

Views and API endpoints ask here (through ``portal.api.auth.require_key`` and, for web pages,
the decorators that come with sign-in); they never compare roles themselves.
"""

from dataclasses import dataclass

from portal.buyers.models import ApiKey, Organisation, Role


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation (as a buyer) or a staff member with a role."""

    role: str
    organisation: Organisation | None
    actor: str  #: for the audit log and the ledger journal

    @classmethod
    def from_api_key(cls, key: ApiKey) -> "Principal":
        if key.organisation is not None:
            return cls(Role.BUYER, key.organisation, f"apikey:{key.prefix}")
        return cls(key.user.role, None, f"apikey:{key.prefix}")


#: What each role may do through the API; anything not listed is forbidden.
PERMISSIONS = {
    "holdings.read_own": {Role.BUYER},
}


def allowed(principal: Principal, action: str) -> bool:
    return principal.role in PERMISSIONS.get(action, set())
