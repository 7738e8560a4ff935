"""Rules about buyer organisations and their users: the public interface of the package.

Views, the API, the CLI, other packages and tests import from here; each rule lives in its own
module:

* ``organisations``: an organisation's details (USCC, sector, names), creation, look-up, its
  holding and offline deliveries into it;
* ``status``: approving, suspending, restricting, barring and reinstating, and the measures
  the public notices list;
* ``accounts``: users (e-mail and password rules, creation, look-up, (de)activation);
* ``signup``: self-service registration;
* ``tokens``: the e-mailed links that confirm an address or reset a password;
* ``signin``: signing in (throttled) and which sessions stay good;
* ``apikeys``: API keys;
* ``errors``: OrganisationError and SignInError.

A test that replaces something a rule calls (a password hash, a time limit) patches the module
the rule lives in, not this one.
"""

from portal.buyers.accounts import create_user, find_user, set_user_active
from portal.buyers.apikeys import (
    authenticate_api_key,
    authenticate_call,
    create_api_key,
    keys_of,
    revoke_api_key,
)
from portal.buyers.errors import OrganisationError, SignInError
from portal.buyers.organisations import (
    create_organisation,
    deliver_from_inventory,
    find_by_uscc,
    holding_account,
    holding_blocks,
    uscc_error,
)
from portal.buyers.signin import FAILURES_PER_EMAIL_AND_ADDRESS, sign_in, user_for_session
from portal.buyers.signup import SIGNUPS_PER_ADDRESS, SIGNUPS_PER_EMAIL, SIGNUPS_PER_USCC, register
from portal.buyers.status import change_status, check_status_change, ended_measures, measures_in_force
from portal.buyers.tokens import (
    RESETS_PER_ADDRESS,
    RESETS_PER_EMAIL,
    confirm_email,
    request_password_reset,
    reset_password,
)

__all__ = [
    "FAILURES_PER_EMAIL_AND_ADDRESS",
    "RESETS_PER_ADDRESS",
    "RESETS_PER_EMAIL",
    "SIGNUPS_PER_ADDRESS",
    "SIGNUPS_PER_EMAIL",
    "SIGNUPS_PER_USCC",
    "OrganisationError",
    "SignInError",
    "authenticate_api_key",
    "authenticate_call",
    "change_status",
    "check_status_change",
    "confirm_email",
    "create_api_key",
    "create_organisation",
    "create_user",
    "deliver_from_inventory",
    "ended_measures",
    "find_by_uscc",
    "find_user",
    "holding_account",
    "holding_blocks",
    "keys_of",
    "measures_in_force",
    "register",
    "request_password_reset",
    "reset_password",
    "revoke_api_key",
    "sign_in",
    "set_user_active",
    "uscc_error",
    "user_for_session",
]
