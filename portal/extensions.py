"""Flask extensions as module globals, bound to an app in ``create_app``."""

from flask import session
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

#: One naming convention so that migrations name constraints the same way on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()


class _LoginManager(LoginManager):
    """Flask-Login's, with "strong" session protection applied to sessions that hold a user.

    Flask-Login skips the check for an empty session (nobody signed in) but not for one that
    holds only what a visitor's browsing put there (the language chosen, a CSRF token, a flashed
    message): having no identifier to compare, such a session "failed" at every request, was
    marked changed and sent back as a new cookie with every answer, static files included. An
    answer to an earlier request, arriving late, then put its older cookie back (a language just
    chosen was lost), and no answer to a visitor could be kept by a shared cache. A session that
    holds a user is checked as before: another browser or address presenting it is signed out
    and loses it."""

    def _session_protection_failed(self):
        if "_user_id" not in session:
            return False
        return super()._session_protection_failed()


login_manager = _LoginManager()
