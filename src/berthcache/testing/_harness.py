"""``LocalRedis``: a small ElastiCache replication group made of local ``redis-server`` processes.

A primary and (optionally) a replica, TLS-only with a CA made for this harness, AUTH plus two
ACL users (``app``: the deployed app user's allow-list, ``berthcache.acl.app_user_access`` — the
commands berthcache sends, on keys and channels under the key prefix; ``admin``: everything,
for fault injection), AOF and a maxmemory policy — and a primary ENDPOINT, a local
TCP proxy that ``failover()`` moves to the promoted replica while dropping the connections it
carried, as ElastiCache moves its DNS name.

    with LocalRedis() as group:
        cache = berthcache.Cache.from_url(group.url(), tls_ca_file=group.ca_file)
        ...
        group.failover()          # FAILOVER: roles swap, endpoint moves, no write lost
        group.unplanned_failover()  # kill -9 the primary, promote the replica
        with group.paused(): ...  # SIGSTOP/SIGCONT;  group.kill(); group.network_cut()

Everything it starts (processes, proxy thread, temp dir) goes away in ``__exit__`` even when the
body raises, at interpreter exit, and on SIGTERM (the clean-up registry, ``_cleanup``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.testing._certs import TLSFiles, make_tls_files
from berthcache.testing._cleanup import register_for_cleanup, unregister_for_cleanup
from berthcache.testing._proxy import TCPProxy
from berthcache.testing._server import (
    ADMIN_RULES,
    ACLUser,
    HarnessError,
    RedisServer,
    StartedInWith,
    app_user_rules,
    wait_for,
)

__all__ = ["LocalRedis"]


class LocalRedis(StartedInWith):
    """Primary (+ replica) + endpoint proxy, started by ``start()`` / ``with``.

    ``tls=False`` serves plain TCP, ``auth=False`` runs without passwords or ACL users,
    ``replica=False`` starts only the primary (faster, for fault tests).
    """

    def __init__(
        self,
        *,
        replica: bool = True,
        tls: bool = True,
        auth: bool = True,
        binary: str | None = None,
        maxmemory: str = "64mb",
        maxmemory_policy: str = "allkeys-lru",
        key_prefix: str = DEFAULT_KEY_PREFIX,
        base_dir: Path | None = None,
        startup_timeout: float = 10.0,
        replication_timeout: float = 10.0,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        self.with_replica = replica
        self.tls = tls
        self.auth = auth
        self.key_prefix = key_prefix
        self.replication_timeout = replication_timeout
        self._binary = binary
        self._settings: dict[str, Any] = {
            "maxmemory": maxmemory,
            "maxmemory_policy": maxmemory_policy,
            "startup_timeout": startup_timeout,
            "extra_config": extra_config,
        }
        self._base_dir = base_dir
        self.directory: Path | None = None
        self._tls_files: TLSFiles | None = None
        self._password: str | None = None
        self._acl: dict[str, ACLUser] = {}
        self._primary: RedisServer | None = None
        self._replica: RedisServer | None = None
        self._proxy: TCPProxy | None = None
        self.started_in: float | None = None  # seconds start() took
        #: ``time.monotonic()`` when a failover last moved the endpoint (``None``: never).
        self.endpoint_moved_at: float | None = None

    # -- what tests use --------------------------------------------------------------------------

    @property
    def primary(self) -> RedisServer:
        """The server that is primary now (changes on ``failover()``)."""
        if self._primary is None:
            raise HarnessError("LocalRedis is not started")
        return self._primary

    @property
    def replica(self) -> RedisServer | None:
        """The server that is replica now, or ``None`` when started with ``replica=False``."""
        return self._replica

    @property
    def ca_file(self) -> str | None:
        """The per-run CA that signed the server certificate (``None`` with ``tls=False``)."""
        return str(self._tls_files.ca_file) if self._tls_files else None

    @property
    def password(self) -> str | None:
        """The default user's password (``requirepass``), ``None`` with ``auth=False``."""
        return self._password

    @property
    def users(self) -> dict[str, tuple[str, str]]:
        """ACL users by role: ``{"app": (username, password), "admin": (username, password)}``."""
        return {role: (u.name, u.password) for role, u in self._acl.items()}

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(host, port)`` of the primary endpoint (the proxy)."""
        if self._proxy is None:
            raise HarnessError("LocalRedis is not started")
        return self._proxy.host, self._proxy.port

    @property
    def proxy(self) -> TCPProxy:
        if self._proxy is None:
            raise HarnessError("LocalRedis is not started")
        return self._proxy

    def url(self, user: str | None = "app", *, via_endpoint: bool = True, db: int = 0) -> str:
        """``rediss://user:pw@127.0.0.1:port/db`` for ``user`` ("app", "admin" or ``None`` for the
        default user), through the endpoint or straight to the current primary."""
        scheme = "rediss" if self.tls else "redis"
        host, port = self.endpoint if via_endpoint else (self.primary.host, self.primary.port)
        auth = ""
        if self.auth:
            if user is None or user == "default":
                auth = f":{quote(self._password or '', safe='')}@"
            else:
                if user not in self._acl:
                    known = ", ".join(sorted(self._acl))
                    raise KeyError(f"unknown user {user!r}; choose one of: {known}, or None")
                acl = self._acl[user]
                auth = f"{quote(acl.name, safe='')}:{quote(acl.password, safe='')}@"
        return f"{scheme}://{auth}{host}:{port}/{db}"

    def admin_client(self, server: RedisServer | None = None, **kwargs: Any) -> redis.Redis:
        """A redis-py client, as admin, straight to ``server`` (default: the current primary)."""
        return (server or self.primary).client("admin", **kwargs)

    def __repr__(self) -> str:
        if self._proxy is None:
            return "<LocalRedis not started>"
        host, port = self.endpoint
        return f"<LocalRedis endpoint={host}:{port} primary={self.primary!r}>"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start primary, replica (waiting for its link to be up) and the endpoint proxy."""
        if self._primary is not None:
            return
        began = time.monotonic()
        self.directory = Path(tempfile.mkdtemp(prefix="berthcache-redis-", dir=self._base_dir))
        register_for_cleanup(self, owner=True)  # closes its servers and proxy in order
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        self.started_in = time.monotonic() - began

    def _start(self) -> None:
        assert self.directory is not None
        if self.tls:
            self._tls_files = make_tls_files(self.directory / "tls")
        if self.auth:
            self._password = secrets.token_hex(16)
            self._acl = {
                "admin": ACLUser("admin", secrets.token_hex(16), ADMIN_RULES),
                "app": ACLUser("app", secrets.token_hex(16), app_user_rules(self.key_prefix)),
            }
        self._primary = self._server("primary", replicaof=None)
        self._primary.start()
        if self.with_replica:
            self._replica = self._server(
                "replica", replicaof=(self._primary.host, self._primary.port)
            )
            self._replica.start()
            self.wait_for_replication()
        self._proxy = TCPProxy((self._primary.host, self._primary.port))

    def _server(self, name: str, replicaof: tuple[str, int] | None) -> RedisServer:
        assert self.directory is not None
        admin = self._acl.get("admin")
        return RedisServer(
            directory=self.directory / name,
            binary=self._binary,
            tls=self._tls_files,
            password=self._password,
            users=list(self._acl.values()),
            replicaof=replicaof,
            # Both nodes know how to authenticate to a primary, so roles can swap.
            master_user=admin.name if admin else None,
            master_password=admin.password if admin else None,
            name=name,
            **self._settings,
        )

    def close(self) -> None:
        """Stop the proxy and every server, remove the temp dir. Idempotent, never half-done."""
        for server in (self._primary, self._replica):  # a paused server cannot shut down
            pid = server.pid if server is not None else None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        try:
            for stop in (
                self._proxy.close if self._proxy else None,
                self._replica.close if self._replica else None,
                self._primary.close if self._primary else None,
            ):
                if stop is not None:
                    with contextlib.suppress(Exception):
                        stop()
        finally:
            unregister_for_cleanup(self)
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)

    # -- replication and failover ----------------------------------------------------------------

    def wait_for_replication(self, timeout: float | None = None) -> None:
        """Block until the replica reports ``master_link_status:up``."""
        replica = self._replica
        if replica is None:
            raise HarnessError("this LocalRedis has no replica (started with replica=False)")
        client = self.admin_client(replica)

        def link_up() -> bool | None:
            with contextlib.suppress(redis.RedisError, OSError):
                if client.info("replication").get("master_link_status") == "up":
                    return True
            return None

        try:
            wait_for(
                link_up,
                timeout=timeout or self.replication_timeout,
                what=f"{replica!r} to report master_link_status:up",
                on_timeout=replica.log_tail,
            )
        finally:
            client.close()

    def failover(self, timeout: float | None = None) -> None:
        """Planned failover with Redis's ``FAILOVER``: no acknowledged write is lost.

        On the primary, ``FAILOVER TO <replica> TIMEOUT <ms>`` pauses writes, waits until the
        replica has the whole replication stream, demotes the primary and promotes the replica
        (what ElastiCache's ``test_failover`` does for a healthy group). Writes that arrive
        meanwhile wait, then get ``READONLY`` — never an acknowledgement the new primary lacks.
        Once the replica reports ``role:master`` the endpoint moves there and drops the
        connections it carried; clients reconnect through it to the new primary. Raises
        :class:`HarnessError` when the replica did not catch up in time (roles unchanged).
        """
        old, new = self.primary, self._replica
        if new is None:
            raise HarnessError("failover needs a replica (LocalRedis(replica=True))")
        limit = timeout or self.replication_timeout
        self.wait_for_replication(limit)  # FAILOVER TO needs the replica connected
        old_client, new_client = self._control_client(old), self._control_client(new)
        try:
            try:
                old_client.execute_command(  # type: ignore[no-untyped-call]
                    "FAILOVER", "TO", new.host, new.port, "TIMEOUT", int(limit * 1000)
                )
            except redis.RedisError as exc:
                raise HarnessError(f"{old!r} refused FAILOVER: {exc}") from exc

            def switched() -> bool | None:
                with contextlib.suppress(redis.RedisError, OSError):
                    if new_client.info("replication").get("role") == "master":
                        return True
                    state = old_client.info("replication")
                    if (
                        state.get("role") == "master"
                        and state.get("master_failover_state") == "no-failover"
                    ):
                        raise HarnessError(
                            f"FAILOVER from {old!r} to {new!r} was aborted (the replica did not "
                            f"catch up within {limit:g} s); roles unchanged"
                        )
                return None

            wait_for(
                switched,
                timeout=limit + 2.0,  # FAILOVER gives up by itself after `limit`
                what=f"{new!r} to report role:master after FAILOVER",
                interval=0.002,  # clients get READONLY until the endpoint moves: be quick
                on_timeout=new.log_tail,
            )
        finally:
            old_client.close()
            new_client.close()
        self._switch_roles(old, new)
        self.wait_for_replication(timeout)

    def unplanned_failover(self, *, rejoin: bool = True, timeout: float | None = None) -> None:
        """Kill -9 the primary, promote the replica (``REPLICAOF NO ONE``), move the endpoint.

        What an ElastiCache node failure does: writes acknowledged by the primary that had not
        reached the replica yet are lost (replication is asynchronous). With ``rejoin`` the
        killed node comes back as a replica of the new primary (a full resync drops whatever
        only it had), so the group has a replica again.
        """
        old, new = self.primary, self._replica
        if new is None:
            raise HarnessError("failover needs a replica (LocalRedis(replica=True))")
        self.kill(old)
        new_client = self._control_client(new)
        try:
            new_client.replicaof("NO", "ONE")
        finally:
            new_client.close()
        self._switch_roles(old, new)
        if rejoin:
            old.start()  # its config now says replicaof the new primary
            self.wait_for_replication(timeout)

    def _switch_roles(self, old: RedisServer, new: RedisServer) -> None:
        """Record the new roles (they survive ``restart()``) and move the endpoint."""
        new.replicaof, old.replicaof = None, (new.host, new.port)
        self._primary, self._replica = new, old
        self.proxy.retarget((new.host, new.port), drop_connections=True)
        self.endpoint_moved_at = time.monotonic()

    def _control_client(self, server: RedisServer) -> redis.Redis:
        """Admin client for the harness's own commands: short timeouts, no retries."""
        return self.admin_client(
            server, socket_connect_timeout=2.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )

    # -- faults: kill, pause, network cut --------------------------------------------------------

    def kill(self, server: RedisServer | None = None, timeout: float = 5.0) -> None:
        """SIGKILL ``server`` (default: the primary) and wait until it is gone. ``start()`` (or
        ``restart()``) brings it back on the same port with its AOF."""
        target = server or self.primary
        pid = target.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a paused server dies as well
            os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: None if target.is_running() else True,
            timeout=timeout,
            what=f"{target!r} to exit after SIGKILL",
        )
        target.stop()  # forget the dead process; keeps port and data for start()

    @contextlib.contextmanager
    def paused(self, server: RedisServer | None = None) -> Iterator[RedisServer]:
        """SIGSTOP ``server`` (default: the primary) for the ``with`` block, SIGCONT after — also
        when the block raises or is interrupted. A stopped server accepts connections (the
        kernel completes the handshake) but answers nothing, as a hung node does."""
        with (server or self.primary).paused() as target:
            yield target

    @contextlib.contextmanager
    def network_cut(self) -> Iterator[None]:
        """Cut the network at the endpoint for the ``with`` block: nothing is forwarded either
        way and new connections hang (a partition, not a refusal); healed afterwards."""
        self.proxy.cut()
        try:
            yield
        finally:
            self.proxy.heal()
