"""The pytest plugin of ``deriv_sdk``: a ``deriv_server`` fixture.

Installed through the ``pytest11`` entry point, so pytest loads this module whenever
``deriv_sdk`` is installed, even without the ``testing`` extra. That is why nothing here
imports ``websockets`` or :class:`~deriv_sdk.testing.LocalServer` at module level: the import
happens inside the fixture, and only a test that asks for ``deriv_server`` needs the extra.

Usage::

    def test_my_bot(deriv_server):
        bot = MyBot(url=deriv_server.url, token="test-token")
        ...

    @pytest.mark.deriv_server(tick_interval=0.01, rate_limits={"proposal": 5})
    def test_my_fast_bot(deriv_server):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from deriv_sdk.testing.server import LocalServer

#: Seconds between two ticks of every stream of the fixture's server: small, so that tests
#: that wait for a few ticks or for a 2-tick contract to settle stay fast (20 ticks/s).
FIXTURE_TICK_INTERVAL = 0.05

#: The token the fixture's server accepts (a virtual USD account with 10,000).
FIXTURE_TOKEN = "test-token"

#: The PAT the fixture's server accepts for the new API (one demo account with 10,000 USD;
#: any non-empty ``Deriv-App-ID`` goes with it).
FIXTURE_PAT = "test-pat"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``deriv_server`` marker."""
    config.addinivalue_line(
        "markers",
        "deriv_server(**kwargs): LocalServer arguments for the deriv_server fixture of the test",
    )


@pytest.fixture
def deriv_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """A started :class:`~deriv_sdk.testing.LocalServer`, stopped after the test.

    It listens on ``127.0.0.1`` on a free port, accepts the v3 token ``"test-token"`` (a
    virtual USD account with 10,000) and the new API's PAT ``"test-pat"`` (one demo account
    with 10,000 USD; any non-empty ``Deriv-App-ID``), ticks every 0.05 s and uses the seed
    1234, so that the prices of a test run are reproducible. Connect with
    ``deriv_server.url`` (v3), ``deriv_server.options_url`` and ``deriv_server.rest_url``
    (the new API). A ``@pytest.mark.deriv_server(**kwargs)`` marker on the test overrides any
    of these ``LocalServer`` arguments.
    """
    from deriv_sdk.testing.server import LocalServer

    kwargs: dict[str, Any] = {
        "tokens": [FIXTURE_TOKEN],
        "pats": [FIXTURE_PAT],
        "tick_interval": FIXTURE_TICK_INTERVAL,
        "seed": 1234,
    }
    marker = request.node.get_closest_marker("deriv_server")
    if marker is not None:
        kwargs.update(marker.kwargs)
    server = LocalServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
