"""Fixtures of the ops CLI tests: fake AWS credentials and moto in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.support import REGION


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can reach real AWS."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def mocked_aws(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def moto_server(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free 127.0.0.1 port, with AWS_ENDPOINT_URL pointing at it; moto's
    state (shared with in-process mocks) is reset first, so tests never see each other's."""
    import urllib.request

    from moto.server import ThreadedMotoServer

    from berthcache.testing._server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        reset = f"{url}/moto-api/reset"
        request = urllib.request.Request(reset, method="POST")  # noqa: S310 - local moto
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - local moto server
            pass
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url
    finally:
        server.stop()
