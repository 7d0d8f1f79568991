"""The part of ``Cache`` / ``AsyncCache`` the feature modules use, as a protocol.

Features (sessions, responses, rate limiting, presence, pub/sub) are handed the client they run
on and talk to it only through :class:`CacheHost` — their commands go through its transport
(``_transport``), what needs a connection of its own through ``redis``; they never import the
client modules, so the clients can import the features (lazily) without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from berthcache._config import CacheConfig
from berthcache._keys import KeyBuilder
from berthcache._serialization import JsonCodec

__all__ = ["CacheHost"]


class CacheHost(Protocol):
    """The part of ``Cache`` / ``AsyncCache`` the feature classes use."""

    @property
    def config(self) -> CacheConfig: ...

    @property
    def redis(self) -> Any: ...

    @property
    def keys(self) -> KeyBuilder: ...

    @property
    def _transport(self) -> Any:
        """The cache's transport (``berthcache._transport``): ``call`` / ``batch`` of raw
        commands, a :class:`~berthcache._budget.Budget` for calls that must answer in time."""

    @property
    def _json(self) -> JsonCodec:
        """JSON in and out, through the configured serializer."""
        ...

    def _operation(self) -> AbstractContextManager[Any]: ...

    def _on_close(self, callback: Callable[[], Any]) -> None: ...

    def _forget_on_close(self, callback: Callable[[], Any]) -> None: ...
