"""Fixtures for the operating tests (metrics, logs): the simulators of the sync and OAuth tests."""
from tests.oauth.conftest import qbo, sandbox  # noqa: F401 - the connect flow's simulator
from tests.sync.conftest import qbo_app, sandbox_server  # noqa: F401 - the sync's simulator
