"""Time budgets: calls that must answer in time whatever Redis does (paused, black-holed, slow).

The ordinary command path retries (``REDIS_MAX_RETRIES_PER_REQUEST``) with 5 s socket timeouts:
right for data, wrong for a health check or a rate-limit decision, which a load balancer or a
request waits for. Calls with a budget (:class:`Budget`) are handed to the cache's transport
(:mod:`berthcache._transport`) with it: one attempt, no retries, the whole call bounded. The
reference transports do it on redis-py pools of their own — the same endpoint, TLS,
credentials, client name and connection events, but no retries — with this module's machinery:

* sync (:class:`BoundedClient`): a deadline in a context variable that the pool and its
  connections apply to every blocking step — waiting for a free connection, TCP connect, TLS
  handshake, each send and each read — as the socket timeout of that step;
* asyncio (:class:`AsyncBoundedClient`): ``asyncio.timeout`` around the call.

Either way a connection that timed out mid-command is disconnected by redis-py (a socket timeout,
or a cancelled read/write) and reconnects on its next use: never reused out of step.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
import redis.exceptions as rex

from berthcache._config import ENV_VARS, CacheConfig
from berthcache._events import EventConnection, EventSSLConnection
from berthcache._exceptions import CacheUnavailableError
from berthcache._pool import AsyncWaitingPool, WaitingPool

__all__ = [
    "AsyncBoundedClient",
    "BoundedClient",
    "Budget",
    "BudgetExceededError",
    "bounded_pool_kwargs",
    "deadline_call",
]

T = TypeVar("T")

#: The monotonic time the current budgeted call must be done by (sync client; None: no budget).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "berthcache_deadline", default=None
)
#: A spent budget still goes through the socket (with this timeout) rather than raising before
#: it, so redis-py's own timeout handling disconnects a connection left mid-command.
_SPENT = 0.001
#: Errors that mean "no answer in time": always for a timeout (every timeout of these clients
#: is the budget's), for a connection error once the deadline has passed (no free connection).
_TIMEOUTS = (rex.TimeoutError, socket.timeout, TimeoutError)
_LATE = (*_TIMEOUTS, rex.ConnectionError)


class BudgetExceededError(CacheUnavailableError):
    """Redis did not answer within a call's time budget (a CacheUnavailableError)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    """How long one kind of call may take, and the setting that says so (for messages)."""

    ms: int
    setting: str

    @property
    def seconds(self) -> float:
        return self.ms / 1000.0

    def exceeded(self) -> BudgetExceededError:
        var = ENV_VARS.get(self.setting, self.setting)
        return BudgetExceededError(
            f"Redis did not answer within {self.ms} ms (the {self.setting} budget, {var})"
        )


def _left() -> float | None:
    """Seconds left in the current budget (at least ``_SPENT``), or None outside one."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), _SPENT)


class _DeadlineMixin:
    """Applies the current deadline as the socket timeout of each blocking step."""

    _sock: Any
    socket_timeout: Any
    socket_connect_timeout: Any
    host: Any
    _berth_tls_context: ssl.SSLContext | None = None

    def _connect(self) -> Any:
        left = _left()
        if left is not None:
            self.socket_connect_timeout = left
            self.socket_timeout = left
        return super()._connect()  # type: ignore[misc]

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        # redis-py builds a fresh SSLContext (system CAs included, tens of ms on a busy host)
        # before the handshake, on the socket timeout set before that: the budget would be
        # overrun by the build. The context is built here once per connection, from the same
        # settings berthcache passes (CA file, verification, client certificate), and the
        # handshake gets exactly what is left of the budget.
        context = self._berth_tls_context
        if context is None:
            context = self._berth_tls_context = _tls_context(self)
        left = _left()
        sock.settimeout(left if left is not None else self.socket_timeout)
        return context.wrap_socket(sock, server_hostname=self.host)

    def _apply_deadline(self) -> None:
        left = _left()
        if left is not None and self._sock is not None:
            self._sock.settimeout(left)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._apply_deadline()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._apply_deadline()
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


def _tls_context(connection: Any) -> ssl.SSLContext:
    """The SSLContext redis-py would build for ``connection``'s settings (those berthcache sets:
    ``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_check_hostname``, ``ssl_certfile/keyfile``)."""
    context = ssl.create_default_context()
    context.check_hostname = connection.check_hostname
    context.verify_mode = connection.cert_reqs
    if connection.certfile or connection.keyfile:
        context.load_cert_chain(certfile=connection.certfile, keyfile=connection.keyfile)
    if connection.ca_certs is not None:
        context.load_verify_locations(cafile=connection.ca_certs)
    return context


class BoundedConnection(_DeadlineMixin, EventConnection):
    """Sync TCP connection whose every blocking step ends by the call's deadline."""


class BoundedSSLConnection(_DeadlineMixin, EventSSLConnection):
    """Sync TLS connection whose every blocking step ends by the call's deadline."""


class _BoundedPool(WaitingPool):
    """The blocking pool, waiting for a free connection no longer than the call's deadline."""

    @property
    def timeout(self) -> float | None:
        left = _left()
        return self._wait if left is None else left

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._wait = value


def bounded_pool_kwargs(config: CacheConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ordinary pool's ``kwargs`` with the budgets as socket and pool-wait timeouts (the
    longest budget caps every step; each call's own deadline bounds it further)."""
    cap = max(
        config.health_timeout_ms, config.rate_limit_timeout_ms, config.response_cache_timeout_ms
    )
    seconds = cap / 1000.0
    return {
        **kwargs,
        "socket_connect_timeout": seconds,
        "socket_timeout": seconds,
        "timeout": seconds,
    }


def _answered(exc: BaseException, deadline: float) -> bool:
    """Whether ``exc`` is an answer in time (refused, reset) rather than the budget running out."""
    return not isinstance(exc, _TIMEOUTS) and time.monotonic() < deadline


def deadline_call(budget: Budget, send: Callable[..., T], *args: Any) -> T:
    """``send(*args)`` done within ``budget`` on bounded connections (their every blocking step
    ends by the deadline); BudgetExceededError when it was not."""
    deadline = time.monotonic() + budget.seconds
    token = _DEADLINE.set(deadline)
    try:
        return send(*args)
    except _LATE as exc:
        if _answered(exc, deadline):
            raise  # refused, reset …: an answer in time, mapped at the error boundary
        raise budget.exceeded() from exc
    finally:
        _DEADLINE.reset(token)


class BoundedClient:
    """The sync pool for budgeted calls: no retries, a deadline per call."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        tls = kwargs["connection_class"] is not EventConnection
        kwargs = {**kwargs, "connection_class": BoundedSSLConnection if tls else BoundedConnection}
        self.pool = _BoundedPool(**kwargs)  # type: ignore[no-untyped-call]
        self.redis = redis.Redis(connection_pool=self.pool)

    def call(self, budget: Budget, send: Callable[[redis.Redis], T]) -> T:
        """``send(client)`` done within ``budget``; BudgetExceededError when it was not."""
        return deadline_call(budget, send, self.redis)

    def close(self) -> None:
        self.pool.disconnect()


class AsyncBoundedClient:
    """The asyncio pool for budgeted calls: no retries, ``asyncio.timeout`` around each."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.pool = AsyncWaitingPool(**kwargs)
        self.redis = aredis.Redis(connection_pool=self.pool)

    async def call(self, budget: Budget, send: Callable[[aredis.Redis], Awaitable[T]]) -> T:
        """``await send(client)`` done within ``budget``; BudgetExceededError when it was not."""
        return await self.run(budget, send(self.redis))

    async def run(self, budget: Budget, work: Awaitable[T]) -> T:
        """``await work`` done within ``budget``; BudgetExceededError when it was not."""
        deadline = time.monotonic() + budget.seconds
        try:
            async with asyncio.timeout(budget.seconds):
                return await work
        except _LATE as exc:
            if _answered(exc, deadline):
                raise
            raise budget.exceeded() from exc

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
