"""What guards a view, recorded on the view itself so that a test can read it for every route.

``portal.access`` records ``("page" | "api", actions)`` with its decorators; ``public`` marks an
endpoint anyone may call (the catalog, verification, sign-in, the health check …). It lives here,
below every package, so that the lowest ones (core, catalog, payments) mark their public pages
without importing the permission model.
"""


def guarded(view, kind: str, actions: tuple):
    """Records on ``view`` what guards it: ("page" | "api" | "public", the actions)."""
    view.access = (kind, actions)
    return view


def public(view):
    """Marks an endpoint anyone may call, so that the route test knows it is public on purpose."""
    return guarded(view, "public", ())
