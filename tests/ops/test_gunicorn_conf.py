"""The deployed gunicorn settings (``portal.ops.gunicorn_conf``), as gunicorn itself reads them."""

import gc

from gunicorn.app.base import Application


class _Deployed(Application):
    """gunicorn's application with only the deployed settings module loaded, by gunicorn's own
    loader (a hook of a name gunicorn does not know would not be loaded)."""

    def __init__(self):
        self.usage = self.prog = self.callable = self.logger = None
        self.load_default_config()
        self.load_config_from_module_name_or_filename("python:portal.ops.gunicorn_conf")

    def init(self, parser, opts, args):
        return None

    def load(self):
        return None


def _settings():
    return _Deployed().cfg


def test_a_worker_freezes_what_start_up_made_once_the_app_is_built():
    """gunicorn calls the hook after a worker has built the application: every object made by
    then leaves the cyclic collector's generations (``gc.freeze``), those made later stay in
    them."""
    hook = _settings().post_worker_init
    before = object.__new__(type("Made", (), {}))  # a tracked object made at start-up
    assert gc.is_tracked(before)
    frozen = gc.get_freeze_count()
    try:
        hook(None)
        assert gc.get_freeze_count() > frozen
        assert not any(o is before for o in gc.get_objects())  # no longer in any generation
        after = object.__new__(type("Later", (), {}))
        assert any(o is after for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_a_worker_that_exits_is_tidied():
    assert _settings().child_exit.__module__ == "portal.ops.gunicorn_conf"
