"""Which visitors are shown the pages every visitor is shown, so that such a page may be kept
drawn and served to the next one (the catalog, certificate pages)."""

from flask import session
from flask_login import current_user

#: The session key of the order a visitor is putting together (``offsets.basket``): the site's
#: header links to it, so a page drawn with it is that visitor's own.
ORDER_LINES = "order_lines"

#: What a session may hold that shows in the frame of every page: messages waiting to be shown,
#: an order being put together.
_OWN = ("_flashes", ORDER_LINES)


def sees_shared_pages() -> bool:
    """Whether nobody is signed in and the session holds nothing that shows on the page: the
    visitor then sees what every such visitor sees."""
    return not current_user.is_authenticated and not any(session.get(key) for key in _OWN)
