"""Cluster mode (issue 11): a transport that speaks to a Redis Cluster — ElastiCache cluster mode
or Serverless — through one ordinary transport per node.

``config.host`` / ``config.port`` name the configuration endpoint. The slot map comes from
``CLUSTER SLOTS`` there (or, when it is gone, from any node known); each command goes to the
primary serving its key's hash slot (CRC16, hash tags honoured: ``redis.crc.key_slot``). Every
node has a transport of its own — a :class:`~berthcache._lean.LeanTransport` (sync) or an
:class:`~berthcache._mux.AsyncMultiplexer` (async), built from
``config.replace(host=node, port=…)`` — so the retry policy, connection events, budgets, TLS
host-name checks (against the node's own name) and the async multiplexing all apply per node.

Routing:

* a command with one key (``GET``, ``SET``, ``EXPIRE``, ``SADD`` …): its key is ``args[1]``;
  ``EVAL`` / ``EVALSHA`` by their first key (all keys must share a slot, as Redis requires);
  ``SPUBLISH`` by its channel;
* ``PUBLISH`` by its channel's slot — where redis-py's cluster pub/sub subscribes, so the
  count it returns covers berthcache's subscribers (Redis Cluster counts per node);
* commands without keys (``INFO``, ``SCRIPT`` …) to a primary; a bare ``PING``
  (``ping()``, ``check_health()``) to every primary — health per node: it answers only when
  every shard does, with the slowest round trip;
* ``DEL`` / ``UNLINK`` / ``EXISTS`` / ``TOUCH`` / ``MGET`` / ``MSET`` over several slots: split per
  slot, the parts sent together and their replies merged (counts summed, ``MGET`` values put
  back in the callers' order);
* a batch (a pipeline) split per node — each node's part in one write — and the replies put
  back in order; a transaction only within one slot (:class:`CrossSlotError` otherwise: use hash
  tags, ``{user-42}``, so the keys share one).

Redirections, each bounded (:data:`MAX_REDIRECTIONS` per command): ``MOVED`` (the slot has a new
owner: the map is refreshed and the command resent there), ``ASK`` (a slot being migrated: the
command is resent to the named node after ``ASKING``, both in one write), ``TRYAGAIN`` and
``CLUSTERDOWN`` (a migration or a failover in progress: resent after the retry policy's backoff,
the map refreshed). A node that stays unreachable once its own transport has spent its retries
makes the map be read again; the command is resent when its slot now has another owner (a
failover), else the error is raised.

Thread / task safety: the sync transport may be used from many threads (the node transports
are; the map is replaced whole, and node transports are created under a lock); the async one
from the tasks of one event loop (its node multiplexers check that).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions as rex
from redis.crc import key_slot

from berthcache._budget import Budget, BudgetExceededError
from berthcache._config import CacheConfig
from berthcache._events import ConnectionEvents
from berthcache._exceptions import CacheClosedError
from berthcache._lean import LeanTransport
from berthcache._mux import AsyncMultiplexer
from berthcache._retry import Backoff
from berthcache._transport import Args, transaction_replies

__all__ = [
    "MAX_REDIRECTIONS",
    "AsyncClusterTransport",
    "ClusterTransport",
    "CrossSlotError",
    "hash_slot",
]

#: Redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) followed per command before its last
#: error is returned: a resharding or failover settles within a few.
MAX_REDIRECTIONS = 5
SLOTS = 16384
#: A map read this recently is not read again for another MOVED (many callers, one change).
_REFRESH_INTERVAL = 0.05
_PING: Args = ("PING",)
_CLOSED = "the transport is closed (close() was called); create a new client"

Node = tuple[str, int]

#: Commands without keys: sent to a primary.
_KEYLESS = frozenset(
    {
        "PING", "ECHO", "INFO", "SCRIPT", "TIME", "DBSIZE", "CLUSTER", "CLIENT",
        "CONFIG", "COMMAND", "SLOWLOG", "LATENCY", "ACL", "AUTH", "HELLO", "READONLY",
        "READWRITE", "SCAN", "RANDOMKEY", "FLUSHDB", "FLUSHALL", "LASTSAVE", "ROLE", "WAIT",
        "FUNCTION", "PUBSUB", "ASKING", "MULTI", "EXEC", "DISCARD", "UNWATCH", "SELECT",
    }
)  # fmt: skip
#: Commands whose arguments are all keys, split per slot and merged by summing their counts.
_SUMMED = frozenset({"DEL", "UNLINK", "EXISTS", "TOUCH"})
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})


class CrossSlotError(rex.ResponseError):
    """A transaction (or script) whose keys live in different hash slots: Redis Cluster runs
    those only within one slot. Hash-tag the keys (``app:{user-42}:a``) so they share one."""


def hash_slot(key: Any) -> int:
    """The hash slot of ``key`` (str, bytes or int), hash tags honoured."""
    if isinstance(key, str):
        data = key.encode("utf-8")
    elif isinstance(key, bytes | bytearray | memoryview):
        data = bytes(key)
    else:
        data = str(key).encode("utf-8")
    return int(key_slot(data))


def _name(args: Args) -> str:
    name = args[0]
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return str(name).upper()


def _keys(args: Args) -> list[Any]:
    """Every key ``args`` names (empty for a command without keys)."""
    name = _name(args)
    if name in _KEYLESS or len(args) < 2:
        return []
    if name in _SCRIPTS:
        return list(args[3 : 3 + int(args[2])])
    if name in _SUMMED or name == "MGET":
        return list(args[1:])
    if name == "MSET":
        return list(args[1::2])
    if name == "MEMORY":
        return [args[2]] if len(args) > 2 and str(args[1]).upper() == "USAGE" else []
    if name in ("OBJECT", "XINFO"):
        return [args[2]] if len(args) > 2 else []
    return [args[1]]


def _slot_of(args: Args) -> int | None:
    """The slot ``args`` goes to: its first key's (None: no key, any primary)."""
    keys = _keys(args)
    return hash_slot(keys[0]) if keys else None


#: A command as sent: its parts (slot, args) and how their replies become the command's reply.
Merge = Callable[[list[Any]], Any]


def _first(replies: list[Any]) -> Any:
    return replies[0]


def _split(args: Args) -> tuple[list[tuple[int | None, Args]], Merge]:
    """``args`` as one part per slot, with the merge of the parts' replies."""
    name = _name(args)
    if name in _SUMMED or name in ("MGET", "MSET"):
        keys = _keys(args)
        slots = [hash_slot(k) for k in keys]
        if len(set(slots)) > 1:
            return _split_multi(name, args, slots)
    return [(_slot_of(args), args)], _first


def _split_multi(
    name: str, args: Args, slots: list[int]
) -> tuple[list[tuple[int | None, Args]], Merge]:
    groups: dict[int, list[int]] = {}
    for position, slot in enumerate(slots):
        groups.setdefault(slot, []).append(position)
    step = 2 if name == "MSET" else 1
    parts: list[tuple[int | None, Args]] = []
    for slot, positions in groups.items():
        items = [a for p in positions for a in args[1 + p * step : 1 + (p + 1) * step]]
        parts.append((slot, (args[0], *items)))

    def merge(replies: list[Any]) -> Any:
        for reply in replies:
            if isinstance(reply, Exception):
                return reply
        if name in _SUMMED:
            return sum(int(r) for r in replies)
        if name == "MSET":
            return "OK"
        values: list[Any] = [None] * len(slots)
        for positions, reply in zip(groups.values(), replies, strict=True):
            for position, value in zip(positions, reply, strict=True):
                values[position] = value
        return values

    return parts, merge


def _transaction_slot(commands: Sequence[Args]) -> int | None:
    slots = {hash_slot(k) for args in commands for k in _keys(args)}
    if len(slots) > 1:
        names = sorted({_name(args) for args in commands if _keys(args)})
        raise CrossSlotError(
            f"a transaction in cluster mode must keep its keys in one hash slot; these "
            f"({', '.join(names)}) span {len(slots)} slots: hash-tag the keys "
            "(prefix:{tag}:rest) so they share one"
        )
    return slots.pop() if slots else None


def _parse_slots(reply: Any, endpoint: Node) -> list[Node | None]:
    """``CLUSTER SLOTS`` as the primary of each slot (a node announced without a host name is
    reached at the endpoint's host)."""
    owners: list[Node | None] = [None] * SLOTS
    for row in reply:
        start, end, primary = int(row[0]), int(row[1]), row[2]
        host = primary[0] if primary[0] not in ("", "?", None) else endpoint[0]
        node = (str(host), int(primary[1]))
        owners[start : end + 1] = [node] * (end - start + 1)
    return owners


def _redirect(reply: Any) -> str | None:
    """How to resend after ``reply``: ``moved``, ``ask``, ``again`` — or None (a real reply)."""
    if not isinstance(reply, rex.ResponseError):
        return None
    if isinstance(reply, rex.MovedError):
        return "moved"
    if isinstance(reply, rex.AskError):
        return "ask"
    if isinstance(reply, rex.TryAgainError | rex.ClusterDownError):
        return "again"
    return None


def _redirect_node(error: Any, endpoint: Node) -> Node:
    host = error.host or endpoint[0]
    return str(host), int(error.port)


def _unreachable(error: BaseException) -> bool:
    return isinstance(error, rex.ConnectionError | rex.TimeoutError) and not isinstance(
        error, rex.AuthenticationError
    )


class _Remaining:
    """What is left of a call's budget for its resends; the first budget's error when spent."""

    def __init__(self, budget: Budget | None, start: float | None = None) -> None:
        self.budget = budget
        if budget is None:
            self.deadline = None
        else:
            self.deadline = (time.monotonic() if start is None else start) + budget.seconds

    def next(self) -> Budget | None:
        if self.budget is None or self.deadline is None:
            return None
        left = int((self.deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise self.budget.exceeded()
        return Budget(left, self.budget.setting)

    def exceeded(self, error: BudgetExceededError) -> BudgetExceededError:
        return self.budget.exceeded() if self.budget is not None else error


class _ClusterBase:
    """The slot map and the routing shared by both transports."""

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        self.config = config
        self.events = events
        self.endpoint: Node = (config.host, config.port)
        self._owners: list[Node | None] | None = None
        self._primaries: list[Node] = []
        self._refreshed_at = 0.0
        self._closed = False
        #: MOVED / ASK / TRYAGAIN / CLUSTERDOWN replies followed so far (tests, diagnostics).
        self.redirections = 0
        self._observer: Callable[[bytes], None] | None = None
        self._backoff = Backoff(
            config.retry_strategy, config.retry_base_delay_ms, config.retry_max_delay_ms
        )

    def node_config(self, node: Node) -> CacheConfig:
        """The configuration of one node: the endpoint's, at the node's address (TLS host-name
        checks are made against the node's own name)."""
        return self.config.replace(host=node[0], port=node[1])

    def _install(self, reply: Any) -> None:
        owners = _parse_slots(reply, self.endpoint)
        primaries = sorted({n for n in owners if n is not None})
        self._owners = owners  # replaced whole: readers see the old map or the new one
        self._primaries = primaries
        self._refreshed_at = time.monotonic()

    def _owner(self, slot: int | None) -> Node:
        owners = self._owners
        assert owners is not None
        if slot is None:
            if not self._primaries:
                raise rex.ClusterDownError("CLUSTERDOWN no node serves any slot")
            return self._primaries[0]
        node = owners[slot]
        if node is None:
            raise rex.ClusterDownError(f"CLUSTERDOWN hash slot {slot} is not served by any node")
        return node

    def _moved(self, error: Any) -> None:
        """A MOVED's news, known at once for its slot (the full map is read next)."""
        owners = self._owners
        if owners is not None:
            owners[int(error.slot_id)] = _redirect_node(error, self.endpoint)

    def _refresh_due(self) -> bool:
        return time.monotonic() - self._refreshed_at >= _REFRESH_INTERVAL

    def _candidates(self, known: list[Node]) -> list[Node]:
        """Where to read the map: the endpoint first, then every node known."""
        seen = [self.endpoint]
        for node in [*self._primaries, *known]:
            if node not in seen:
                seen.append(node)
        return seen

    def nodes(self) -> list[tuple[str, int]]:
        """The primaries serving slots, as ``(host, port)`` (empty before the first command)."""
        return list(self._primaries)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"{type(self).__name__}(endpoint={self.config.url!r}, "
            f"primaries={len(self._primaries)}, {state})"
        )


class ClusterTransport(_ClusterBase):
    """SyncTransport over a Redis Cluster: a :class:`LeanTransport` per node (see the module
    docstring). A batch's per-node parts are sent one node after another."""

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        super().__init__(config, events)
        self._nodes: dict[Node, LeanTransport] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    # -- nodes and the map -----------------------------------------------------------------------

    def node(self, node: Node) -> LeanTransport:
        """The transport of one node (created when first needed)."""
        transport = self._nodes.get(node)
        if transport is None:
            with self._lock:
                if self._closed:
                    raise CacheClosedError(_CLOSED)
                transport = self._nodes.get(node)
                if transport is None:
                    transport = LeanTransport(self.node_config(node), self.events)
                    if self._observer is not None:
                        transport.observe_writes(self._observer)
                    self._nodes[node] = transport
        return transport

    def _ready(self, budget: Budget | None = None) -> None:
        if self._owners is None:
            self.refresh(budget=budget, force=True)

    def refresh(self, *, budget: Budget | None = None, force: bool = False) -> None:
        """Read the slot map again (from the endpoint, else any node known)."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        with self._refresh_lock:
            if not force and not self._refresh_due():
                return
            error: BaseException | None = None
            for node in self._candidates(list(self._nodes)):
                try:
                    reply = self.node(node).call(("CLUSTER", "SLOTS"), budget=budget)
                except (rex.ConnectionError, rex.TimeoutError, BudgetExceededError) as exc:
                    error = exc
                    continue
                self._install(reply)
                return
            assert error is not None
            raise error

    # -- the transport ---------------------------------------------------------------------------

    def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        if self._closed:
            raise CacheClosedError(_CLOSED)
        self._ready(budget)
        if args == _PING:
            return self._ping_all(budget)
        parts, merge = _split(args)
        if len(parts) == 1:
            slot = parts[0][0]
            start = time.monotonic() if budget is not None else None  # resends share it
            try:
                return self.node(self._owner(slot)).call(args, budget=budget)
            except rex.ResponseError as exc:
                if _redirect(exc) is None:
                    raise
                reply = self._resend(slot, args, _Remaining(budget, start), exc)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                reply = self._after_unreachable(slot, args, _Remaining(budget, start), exc)
        else:
            reply = merge(self._send_parts(parts, budget))
        if isinstance(reply, Exception):
            raise reply
        return reply

    def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        if not commands:
            return []
        if self._closed:
            raise CacheClosedError(_CLOSED)
        self._ready(budget)
        if transaction:
            return self._transaction(commands, budget)
        splits = [_split(args) for args in commands]
        parts = [part for part_list, _ in splits for part in part_list]
        replies = self._send_parts(parts, budget)
        out: list[Any] = []
        at = 0
        for part_list, merge in splits:
            out.append(merge(replies[at : at + len(part_list)]))
            at += len(part_list)
        return out

    def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call`` with bulk strings as ``bytes`` (``get_bytes``), on the node transport's
        ``call_raw``. MOVED is followed as by ``call``; ASK / TRYAGAIN / CLUSTERDOWN (a slot
        moving) are retried after the backoff until the move is done (bounded)."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        self._ready(budget)
        slot = _slot_of(args)
        remaining = _Remaining(budget)
        this = budget
        for attempt in range(MAX_REDIRECTIONS + 1):
            try:
                node: Any = self.node(self._owner(slot))  # call_raw: the binary-values API
                return node.call_raw(args, budget=this)
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except rex.ResponseError as exc:
                kind = _redirect(exc)
                if kind is None or attempt == MAX_REDIRECTIONS:
                    raise
                self.redirections += 1
                if kind != "moved":
                    time.sleep(self._backoff.compute(attempt + 1))
                self._refresh_after(exc)
                if kind == "moved":
                    self._moved(exc)
            this = remaining.next()
        raise AssertionError("unreachable")  # pragma: no cover

    def _ping_all(self, budget: Budget | None) -> Any:
        """PING every primary (health per node), one after another within the budget; the
        first failure raises."""
        remaining = _Remaining(budget)
        reply: Any = None
        for node in list(self._primaries):
            try:
                reply = self.node(node).call(_PING, budget=remaining.next())
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            nodes = list(self._nodes.values())
        for transport in nodes:
            transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def observe_writes(self, observer: Callable[[bytes], None] | None) -> None:
        """The testing seam of the node transports, on every node (those opened later too)."""
        self._observer = observer
        for transport in list(self._nodes.values()):
            transport.observe_writes(observer)

    # -- sending ---------------------------------------------------------------------------------

    def _send_parts(self, parts: list[tuple[int | None, Args]], budget: Budget | None) -> list[Any]:
        """Each node's parts in one batch; redirected parts resent one by one, in order."""
        groups: dict[Node, list[int]] = {}
        for position, (slot, _) in enumerate(parts):
            groups.setdefault(self._owner(slot), []).append(position)
        replies: list[Any] = [None] * len(parts)
        unsent: list[int] = []
        remaining = _Remaining(budget)
        for node, positions in groups.items():
            try:
                got = self.node(node).batch([parts[p][1] for p in positions], budget=budget)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                if not _unreachable(exc):
                    raise
                self._refresh_after(exc, force=True)
                if all(self._owner(parts[p][0]) == node for p in positions):
                    raise  # nobody else serves these slots: the node's error
                unsent.extend(positions)
                continue
            for position, reply in zip(positions, got, strict=True):
                replies[position] = reply
        for position in sorted(unsent):
            slot, args = parts[position]
            replies[position] = self._resend(slot, args, remaining, None)
        for position, reply in enumerate(replies):
            if position not in unsent and _redirect(reply) is not None:
                slot, args = parts[position]
                replies[position] = self._resend(slot, args, remaining, reply)
        return replies

    def _refresh_after(self, error: BaseException, *, force: bool = False) -> None:
        try:
            self.refresh(force=force)
        except (rex.ConnectionError, rex.TimeoutError):
            raise error from None

    def _after_unreachable(
        self, slot: int | None, args: Args, remaining: _Remaining, error: BaseException
    ) -> Any:
        node = self._owner(slot)
        self._refresh_after(error, force=True)
        if self._owner(slot) == node:
            raise error
        return self._resend(slot, args, remaining, None)

    def _resend(self, slot: int | None, args: Args, remaining: _Remaining, reply: Any) -> Any:
        """``args`` resent after ``reply`` (a redirection, or None: not sent yet) until a real
        reply comes (error replies returned as instances), at most MAX_REDIRECTIONS times."""
        asking: Node | None = None
        for attempt in range(MAX_REDIRECTIONS + 1):
            kind = _redirect(reply) if reply is not None else None
            if kind is not None:
                self.redirections += 1
            if kind == "moved":
                self._refresh_after(reply)  # then the MOVED's news, newer than any map
                self._moved(reply)
            elif kind == "ask":
                asking = _redirect_node(reply, self.endpoint)
            elif kind == "again":
                time.sleep(self._backoff.compute(attempt + 1))
                self._refresh_after(reply)
            elif reply is not None:
                return reply
            if attempt == MAX_REDIRECTIONS:
                break
            try:
                budget = remaining.next()
                if asking is not None:
                    got = self.node(asking).batch([("ASKING",), args], budget=budget)
                    reply = got[0] if isinstance(got[0], Exception) else got[1]
                    asking = None
                else:
                    reply = self.node(self._owner(slot)).batch([args], budget=budget)[0]
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                node = self._owner(slot)
                self._refresh_after(exc, force=True)
                if self._owner(slot) == node:
                    raise
                reply = None
        return reply

    def _transaction(self, commands: Sequence[Args], budget: Budget | None) -> list[Any]:
        slot = _transaction_slot(commands)
        remaining = _Remaining(budget)
        asking: Node | None = None
        error: BaseException | None = None
        for attempt in range(MAX_REDIRECTIONS + 1):
            try:
                this = budget if attempt == 0 else remaining.next()
                if asking is not None:
                    got = self.node(asking).batch(
                        [("ASKING",), ("MULTI",), *commands, ("EXEC",)], budget=this
                    )
                    asking = None
                    if isinstance(got[0], Exception):
                        raise got[0]
                    if isinstance(got[1], Exception):
                        raise got[1]
                    return list(transaction_replies(commands, got[2:-1], got[-1]))
                return self.node(self._owner(slot)).batch(commands, transaction=True, budget=this)
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except rex.ResponseError as exc:
                kind = _redirect(exc)
                if kind is None:
                    raise
                error = exc
                self.redirections += 1
                if kind == "moved":
                    self._refresh_after(exc)
                    self._moved(exc)
                elif kind == "ask":
                    asking = _redirect_node(exc, self.endpoint)
                else:
                    time.sleep(self._backoff.compute(attempt + 1))
                    self._refresh_after(exc)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                node = self._owner(slot)
                self._refresh_after(exc, force=True)
                if self._owner(slot) == node:
                    raise
                error = exc
        assert error is not None
        raise error


class AsyncClusterTransport(_ClusterBase):
    """AsyncTransport over a Redis Cluster: an :class:`AsyncMultiplexer` per node (the
    multiplexing applies per node); a batch's per-node parts go out concurrently."""

    def __init__(self, config: CacheConfig, events: ConnectionEvents) -> None:
        super().__init__(config, events)
        self._nodes: dict[Node, AsyncMultiplexer] = {}
        self._refreshing: asyncio.Future[None] | None = None

    def node(self, node: Node) -> AsyncMultiplexer:
        """The multiplexer of one node (created when first needed)."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        transport = self._nodes.get(node)
        if transport is None:
            transport = AsyncMultiplexer(self.node_config(node), self.events)
            if self._observer is not None:
                transport.observe_writes(self._observer)
            self._nodes[node] = transport
        return transport

    async def _ready(self, budget: Budget | None = None) -> None:
        if self._owners is None:
            await self.refresh(budget=budget, force=True)

    async def refresh(self, *, budget: Budget | None = None, force: bool = False) -> None:
        """Read the slot map again; concurrent callers share one read."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        if not force and not self._refresh_due():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refreshing = future
        try:
            await self._read_map(budget)
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: only the callers that wait on it raise it
            raise
        finally:
            self._refreshing = None

    async def _read_map(self, budget: Budget | None) -> None:
        error: BaseException | None = None
        for node in self._candidates(list(self._nodes)):
            try:
                reply = await self.node(node).call(("CLUSTER", "SLOTS"), budget=budget)
            except (rex.ConnectionError, rex.TimeoutError, BudgetExceededError) as exc:
                error = exc
                continue
            self._install(reply)
            return
        assert error is not None
        raise error

    async def call(self, args: Args, *, budget: Budget | None = None) -> Any:
        if self._closed:
            raise CacheClosedError(_CLOSED)
        await self._ready(budget)
        if args == _PING:
            return await self._ping_all(budget)
        parts, merge = _split(args)
        if len(parts) == 1:
            slot = parts[0][0]
            start = time.monotonic() if budget is not None else None  # resends share it
            try:
                return await self.node(self._owner(slot)).call(args, budget=budget)
            except rex.ResponseError as exc:
                if _redirect(exc) is None:
                    raise
                reply = await self._resend(slot, args, _Remaining(budget, start), exc)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                reply = await self._after_unreachable(slot, args, _Remaining(budget, start), exc)
        else:
            reply = merge(await self._send_parts(parts, budget))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def batch(
        self, commands: Sequence[Args], *, transaction: bool = False, budget: Budget | None = None
    ) -> list[Any]:
        if not commands:
            return []
        if self._closed:
            raise CacheClosedError(_CLOSED)
        await self._ready(budget)
        if transaction:
            return await self._transaction(commands, budget)
        splits = [_split(args) for args in commands]
        parts = [part for part_list, _ in splits for part in part_list]
        replies = await self._send_parts(parts, budget)
        out: list[Any] = []
        at = 0
        for part_list, merge in splits:
            out.append(merge(replies[at : at + len(part_list)]))
            at += len(part_list)
        return out

    async def call_raw(self, args: Args, *, budget: Budget | None = None) -> Any:
        """``call`` with bulk strings as ``bytes`` (``get_bytes``), on the node multiplexer's
        ``call_raw``; redirections as in :meth:`ClusterTransport.call_raw`."""
        if self._closed:
            raise CacheClosedError(_CLOSED)
        await self._ready(budget)
        slot = _slot_of(args)
        remaining = _Remaining(budget)
        this = budget
        for attempt in range(MAX_REDIRECTIONS + 1):
            try:
                node: Any = self.node(self._owner(slot))
                return await node.call_raw(args, budget=this)
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except rex.ResponseError as exc:
                kind = _redirect(exc)
                if kind is None or attempt == MAX_REDIRECTIONS:
                    raise
                self.redirections += 1
                if kind != "moved":
                    await asyncio.sleep(self._backoff.compute(attempt + 1))
                await self._refresh_after(exc)
                if kind == "moved":
                    self._moved(exc)
            this = remaining.next()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ping_all(self, budget: Budget | None) -> Any:
        """PING every primary at once (health per node); the first failure raises."""
        replies = await asyncio.gather(
            *(self.node(node).call(_PING, budget=budget) for node in list(self._primaries)),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies[0] if replies else None

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        self._closed = True
        nodes = list(self._nodes.values())
        if nodes:
            await asyncio.gather(*(n.aclose(timeout) for n in nodes), return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def observe_writes(self, observer: Callable[[bytes], None] | None) -> None:
        """The testing seam of the node transports, on every node (those opened later too)."""
        self._observer = observer
        for transport in list(self._nodes.values()):
            transport.observe_writes(observer)

    async def _send_parts(
        self, parts: list[tuple[int | None, Args]], budget: Budget | None
    ) -> list[Any]:
        groups: dict[Node, list[int]] = {}
        for position, (slot, _) in enumerate(parts):
            groups.setdefault(self._owner(slot), []).append(position)
        remaining = _Remaining(budget)
        results = await asyncio.gather(
            *(
                self.node(node).batch([parts[p][1] for p in positions], budget=budget)
                for node, positions in groups.items()
            ),
            return_exceptions=True,
        )
        replies: list[Any] = [None] * len(parts)
        unsent: list[int] = []
        for (node, positions), got in zip(groups.items(), results, strict=True):
            if isinstance(got, BaseException):
                if not _unreachable(got):
                    raise got
                await self._refresh_after(got, force=True)
                if all(self._owner(parts[p][0]) == node for p in positions):
                    raise got
                unsent.extend(positions)
                continue
            for position, reply in zip(positions, got, strict=True):
                replies[position] = reply
        for position in sorted(unsent):
            slot, args = parts[position]
            replies[position] = await self._resend(slot, args, remaining, None)
        for position, reply in enumerate(replies):
            if position not in unsent and _redirect(reply) is not None:
                slot, args = parts[position]
                replies[position] = await self._resend(slot, args, remaining, reply)
        return replies

    async def _refresh_after(self, error: BaseException, *, force: bool = False) -> None:
        try:
            await self.refresh(force=force)
        except (rex.ConnectionError, rex.TimeoutError):
            raise error from None

    async def _after_unreachable(
        self, slot: int | None, args: Args, remaining: _Remaining, error: BaseException
    ) -> Any:
        node = self._owner(slot)
        await self._refresh_after(error, force=True)
        if self._owner(slot) == node:
            raise error
        return await self._resend(slot, args, remaining, None)

    async def _resend(self, slot: int | None, args: Args, remaining: _Remaining, reply: Any) -> Any:
        asking: Node | None = None
        for attempt in range(MAX_REDIRECTIONS + 1):
            kind = _redirect(reply) if reply is not None else None
            if kind is not None:
                self.redirections += 1
            if kind == "moved":
                await self._refresh_after(reply)  # then the MOVED's news, newer than any map
                self._moved(reply)
            elif kind == "ask":
                asking = _redirect_node(reply, self.endpoint)
            elif kind == "again":
                await asyncio.sleep(self._backoff.compute(attempt + 1))
                await self._refresh_after(reply)
            elif reply is not None:
                return reply
            if attempt == MAX_REDIRECTIONS:
                break
            try:
                budget = remaining.next()
                if asking is not None:
                    got = await self.node(asking).batch([("ASKING",), args], budget=budget)
                    reply = got[0] if isinstance(got[0], Exception) else got[1]
                    asking = None
                else:
                    reply = (await self.node(self._owner(slot)).batch([args], budget=budget))[0]
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                node = self._owner(slot)
                await self._refresh_after(exc, force=True)
                if self._owner(slot) == node:
                    raise
                reply = None
        return reply

    async def _transaction(self, commands: Sequence[Args], budget: Budget | None) -> list[Any]:
        slot = _transaction_slot(commands)
        remaining = _Remaining(budget)
        asking: Node | None = None
        error: BaseException | None = None
        for attempt in range(MAX_REDIRECTIONS + 1):
            try:
                this = budget if attempt == 0 else remaining.next()
                if asking is not None:
                    got = await self.node(asking).batch(
                        [("ASKING",), ("MULTI",), *commands, ("EXEC",)], budget=this
                    )
                    asking = None
                    if isinstance(got[0], Exception):
                        raise got[0]
                    if isinstance(got[1], Exception):
                        raise got[1]
                    return list(transaction_replies(commands, got[2:-1], got[-1]))
                return await self.node(self._owner(slot)).batch(
                    commands, transaction=True, budget=this
                )
            except BudgetExceededError as exc:
                raise remaining.exceeded(exc) from exc
            except rex.ResponseError as exc:
                kind = _redirect(exc)
                if kind is None:
                    raise
                error = exc
                self.redirections += 1
                if kind == "moved":
                    await self._refresh_after(exc)
                    self._moved(exc)
                elif kind == "ask":
                    asking = _redirect_node(exc, self.endpoint)
                else:
                    await asyncio.sleep(self._backoff.compute(attempt + 1))
                    await self._refresh_after(exc)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                node = self._owner(slot)
                await self._refresh_after(exc, force=True)
                if self._owner(slot) == node:
                    raise
                error = exc
        assert error is not None
        raise error


# -- redis-py's cluster clients, for what needs a connection of its own -------------------------


def _cluster_client_kwargs(config: CacheConfig) -> dict[str, Any]:
    kwargs = config.connection_kwargs()
    kwargs.pop("db", None)  # a cluster has database 0 only
    kwargs["decode_responses"] = True
    return kwargs


class LazyClusterClient:
    """redis-py's :class:`~redis.cluster.RedisCluster` for ``config``, built (and so connected:
    it reads the slot map when built) on first use — ``Cache.redis`` in cluster mode stays
    lazy like the pooled client it replaces. Attributes are the client's."""

    def __init__(self, config: CacheConfig) -> None:
        self._config = config
        self._client: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from redis.cluster import RedisCluster

                    self._client = RedisCluster(**_cluster_client_kwargs(self._config))
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __repr__(self) -> str:
        return f"LazyClusterClient({self._config.url!r})"


def async_cluster_client(config: CacheConfig) -> Any:
    """redis-py's asyncio :class:`~redis.asyncio.cluster.RedisCluster` for ``config`` (it
    connects on its first command)."""
    from redis.asyncio.cluster import RedisCluster

    return RedisCluster(**_cluster_client_kwargs(config))
