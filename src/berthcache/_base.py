"""What :class:`Cache` and :class:`AsyncCache` share, decided without I/O.

A cache is composed of its settings (:class:`CacheConfig`), its key builder, its connection
events, its :class:`~berthcache._lifecycle.Lifecycle` (open/closed, calls in flight) and its
:class:`~berthcache._commands.CommandPlanner` (what each data method sends). The twins add only
the sending — their transport (:mod:`berthcache._transport`) and the pooled redis-py client
``redis`` for what needs a connection of its own — so they cannot drift apart on anything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from berthcache._commands import CommandPlanner
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvents
from berthcache._exceptions import ConfigurationError
from berthcache._keys import KeyBuilder
from berthcache._lifecycle import Lifecycle, Operation
from berthcache._serialization import JsonCodec, codec_for
from berthcache._transport import pool_kwargs

__all__ = ["CacheBase", "resolve_config"]

_FIELDS = frozenset(f.name for f in dataclasses.fields(CacheConfig))


def resolve_config(config: CacheConfig | None, settings: dict[str, Any]) -> CacheConfig:
    """``config`` with ``settings`` applied, or ``CacheConfig(**settings)``; unknown names raise."""
    unknown = sorted(set(settings) - _FIELDS)
    if unknown:
        raise ConfigurationError(unknown[0], "unknown setting")
    if config is None:
        return CacheConfig(**settings)
    if not isinstance(config, CacheConfig):
        raise ConfigurationError("config", f"must be a CacheConfig, got {type(config).__name__}")
    return config.replace(**settings) if settings else config


class CacheBase:
    """Config, key builder, events, lifecycle and command planner of one cache client."""

    def __init__(self, config: CacheConfig | None = None, **settings: Any) -> None:
        self.config: CacheConfig = resolve_config(config, settings)
        self.keys = KeyBuilder(self.config.key_prefix)
        self.events = ConnectionEvents(self.config.url, secrets=[self.config.password])
        self._lifecycle = Lifecycle(secrets=[self.config.password])
        self._op = self._lifecycle.operation
        #: JSON in and out (the ``serializer`` setting): the planner and every feature use it.
        self._json: JsonCodec = codec_for(self.config.serializer)
        self._plan = CommandPlanner(self.keys, self._json)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has started; every later call raises CacheClosedError."""
        return self._lifecycle.closed

    # -- what feature modules use around their own commands ------------------------------------

    def _operation(self) -> Operation:
        """The context manager around one unit of work (see :class:`Operation`)."""
        return self._op

    def _on_close(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` during ``close()`` before the pool closes (subscriptions use it)."""
        self._lifecycle.on_close(callback)

    def _forget_on_close(self, callback: Callable[[], Any]) -> None:
        """Drop a callback registered with :meth:`_on_close` (its owner closed by itself)."""
        self._lifecycle.forget_on_close(callback)

    def _check_open(self) -> None:
        self._lifecycle.check_open()

    # -- connection pool settings --------------------------------------------------------------

    def _pool_kwargs(self, plain_class: type, tls_class: type, retry: Any) -> dict[str, Any]:
        """The pooled redis-py client's settings (WATCH transactions, subscriptions)."""
        return pool_kwargs(self.config, self.events, plain_class, tls_class, retry)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"{type(self).__name__}(url={self.config.url!r}, "
            f"key_prefix={self.config.key_prefix!r}, {state})"
        )
