"""One real ``redis-server`` 7 process for tests: free port, own directory, config in a file.

Secrets never go on the command line (``ps`` and ``/proc/PID/cmdline`` show it to every local
user): passwords and ACL users live in a ``0600`` config file. Readiness is a real ``PING``
answered, polled with a short interval under an overall timeout; a process that dies early is
reported with the tail of its log. Every started process is registered with the clean-up
registry (:mod:`berthcache.testing._cleanup`: reaped at exit and on SIGTERM) and, on Linux when
started from the main thread, gets a parent-death signal, so even a SIGKILLed pytest leaves no
server behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berthcache import DEFAULT_KEY_PREFIX
from berthcache.acl import app_user_access
from berthcache.testing._certs import TLSFiles
from berthcache.testing._cleanup import register_for_cleanup, unregister_for_cleanup

__all__ = [
    "ADMIN_RULES",
    "INSTALL_HINT",
    "ACLUser",
    "HarnessError",
    "RedisServer",
    "RedisServerNotFoundError",
    "RedisServerStartError",
    "app_user_rules",
    "find_redis_server",
    "free_port",
    "wait_for",
]

MIN_MAJOR = 7
INSTALL_HINT = (
    "install Redis 7 with `sudo apt-get install redis-server` (Debian 12 / Ubuntu 24.04 ship 7.x), "
    "or point REDIS_SERVER=/path/to/redis-server (pytest option --redis-server) at a "
    "redis-server 7 binary"
)
#: Everything, for fault injection (CONFIG SET, DEBUG SLEEP, CLIENT KILL, SHUTDOWN ...).
ADMIN_RULES = "~* &* +@all"

T = TypeVar("T")


class HarnessError(RuntimeError):
    """The local Redis harness could not do what was asked."""


class RedisServerNotFoundError(HarnessError):
    """No usable ``redis-server`` >= 7; the message says what to install or set."""


class RedisServerStartError(HarnessError):
    """``redis-server`` exited or did not answer ``PING`` in time; carries its log tail."""


def app_user_rules(key_prefix: str = DEFAULT_KEY_PREFIX, *, channels: Iterable[str] = ()) -> str:
    """ACL rules of the application user: exactly what the deployed RBAC user gets
    (:func:`berthcache.acl.app_user_access`, shared with ``infra/security.py``)."""
    return app_user_access(key_prefix, channels=channels)


@dataclasses.dataclass(frozen=True)
class ACLUser:
    """A Redis ACL user declared in the server's config file."""

    name: str
    password: str = dataclasses.field(repr=False)
    rules: str

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("password", self.password)):
            if not value or any(c.isspace() for c in value):
                raise ValueError(f"ACLUser {label} must be non-empty without whitespace")

    def config_line(self) -> str:
        return f"user {self.name} reset on >{self.password} {self.rules}"


@functools.lru_cache(maxsize=8)
def find_redis_server(binary: str | None = None) -> tuple[str, tuple[int, ...]]:
    """Locate ``redis-server`` (argument, ``$REDIS_SERVER`` or ``PATH``) and check it is >= 7."""
    name = binary or os.environ.get("REDIS_SERVER") or "redis-server"
    path = shutil.which(name)
    if path is None:
        raise RedisServerNotFoundError(
            f"redis-server not found (looked for {name!r}); {INSTALL_HINT}"
        )
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RedisServerNotFoundError(
            f"cannot run {path} --version ({exc}); {INSTALL_HINT}"
        ) from exc
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if match is None:
        raise RedisServerNotFoundError(
            f"{path} does not look like redis-server (--version said {out.strip()[:80]!r}); "
            f"{INSTALL_HINT}"
        )
    version = tuple(int(g) for g in match.groups())
    if version[0] < MIN_MAJOR:
        shown = ".".join(map(str, version))
        raise RedisServerNotFoundError(
            f"{path} is Redis {shown}; Redis {MIN_MAJOR} or later is needed; {INSTALL_HINT}"
        )
    return path, version


def _is_stopped(pid: int) -> bool:
    """True once the kernel has stopped the process (``State: T`` in ``/proc``; elsewhere the
    signal is trusted)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone, or no /proc
        return True
    return "\nState:\tT" in status


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.01,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something other than ``None``, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            detail = f": {on_timeout()}" if on_timeout else ""
            raise HarnessError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


# -- the server ----------------------------------------------------------------------------------


class StartedInWith:
    """``with thing:`` starts it and closes it afterwards, whatever happens (the local servers
    and groups of this harness; each defines ``start`` and ``close``)."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(StartedInWith):
    """A ``redis-server`` >= 7 process on a free port, configured through a file.

    TLS-only when ``tls`` is given (``port 0`` + ``tls-port``), plain TCP otherwise; AUTH when
    ``password`` (the default user's) is given; ``users`` are declared as ACL users in the file.
    ``stop()`` keeps the data directory and port so ``restart()`` brings the same data back (AOF);
    ``close()`` stops and removes a directory the server created itself. Use as a context manager.
    """

    def __init__(
        self,
        *,
        directory: Path | None = None,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        tls: TLSFiles | None = None,
        password: str | None = None,
        users: Sequence[ACLUser] = (),
        maxmemory: str = "64mb",
        maxmemory_policy: str = "allkeys-lru",
        appendonly: bool = True,
        replicaof: tuple[str, int] | None = None,
        master_user: str | None = None,
        master_password: str | None = None,
        extra_config: Mapping[str, str] | None = None,
        startup_timeout: float = 10.0,
        name: str = "redis",
    ) -> None:
        self.binary, self.version = find_redis_server(binary)
        self._owns_directory = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix=f"berthcache-{name}-")) if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.tls = tls
        self._password = password
        self.users: tuple[ACLUser, ...] = tuple(users)
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.appendonly = appendonly
        self.replicaof = replicaof
        self._master_user = master_user
        self._master_password = master_password
        self.extra_config = dict(extra_config or {})
        self.startup_timeout = startup_timeout
        self.name = name
        self.config_file = self.directory / "redis.conf"
        self.log_file = self.directory / "redis.log"
        self._output_file = self.directory / "stdout.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False

    # -- facts -----------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id while running, else ``None``."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @contextlib.contextmanager
    def paused(self) -> Iterator[Self]:
        """SIGSTOP the server for the ``with`` block (once the kernel has stopped it), SIGCONT
        after — also when the block raises or is interrupted. A stopped server accepts
        connections (the kernel completes the handshake) but answers nothing, as a hung node
        does."""
        pid = self.pid
        if pid is None:
            raise HarnessError(f"{self!r} is not running; nothing to pause")
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: True if _is_stopped(pid) else None,
                timeout=5.0,
                what=f"{self!r} to stop after SIGSTOP",
            )
            yield self
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    @property
    def password(self) -> str | None:
        """The default user's password (``requirepass``), or ``None`` without AUTH."""
        return self._password

    def user(self, name: str) -> ACLUser:
        for user in self.users:
            if user.name == name:
                return user
        known = ", ".join(u.name for u in self.users) or "none"
        raise KeyError(f"no ACL user {name!r} on this server (users: {known})")

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        scheme = "rediss" if self.tls else "redis"
        return f"<RedisServer {self.name} {scheme}://{self.host}:{self.port} {state}>"

    # -- clients ---------------------------------------------------------------------------------

    def connection_kwargs(self, user: str | None = "admin") -> dict[str, Any]:
        """redis-py keyword arguments to reach this server directly as ``user``.

        ``user="admin"`` falls back to the default user when no ACL user ``admin`` exists;
        ``user=None`` means the default user (with ``requirepass`` if set).
        """
        kwargs: dict[str, Any] = {"host": self.host, "port": self.port}
        names = {u.name for u in self.users}
        if user is not None and (user != "admin" or "admin" in names):
            acl = self.user(user)
            kwargs.update(username=acl.name, password=acl.password)
        elif self._password is not None:
            kwargs["password"] = self._password
        if self.tls is not None:
            kwargs.update(
                ssl=True,
                ssl_ca_certs=str(self.tls.ca_file),
                ssl_cert_reqs="required",
                ssl_check_hostname=True,
            )
        return kwargs

    def client(self, user: str | None = "admin", **kwargs: Any) -> redis.Redis:
        """A redis-py client talking to this server directly (admin by default)."""
        options = self.connection_kwargs(user)
        options.setdefault("socket_connect_timeout", 2.0)
        options.setdefault("socket_timeout", 5.0)
        options.update(kwargs)
        return redis.Redis(**options)

    def _quick_client(self, timeout: float) -> redis.Redis:
        """Admin client that never retries: the harness itself polls, with its own timeout."""
        return self.client(
            socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and return once it answers ``PING`` (or raise with its log tail)."""
        if self._closed:
            raise HarnessError(f"{self!r} was closed; create a new RedisServer")
        if self.is_running():
            return
        self._write_config()
        command = [self.binary, str(self.config_file)]
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            # The kernel sends SIGTERM to redis-server if this process dies (even SIGKILLed).
            command = [setpriv, "--pdeathsig", "TERM", *command]
        register_for_cleanup(self)
        with open(self._output_file, "ab") as output:
            self._process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to pytest, which then stops us in order
            )
        try:
            wait_for(
                self._ping_once,
                timeout=self.startup_timeout,
                what=f"{self!r} to answer PING",
                on_timeout=self.log_tail,
            )
        except BaseException:
            self._kill()
            raise

    def _ping_once(self) -> bool | None:
        process = self._process
        assert process is not None
        code = process.poll()
        if code is not None:
            raise RedisServerStartError(
                f"redis-server ({self.name}) exited with code {code} while starting; "
                f"log tail:\n{self.log_tail()}"
            )
        client = self._quick_client(0.5)
        try:
            return True if client.ping() else None
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return None
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        """``SHUTDOWN NOSAVE NOW FORCE``, then SIGTERM / SIGKILL if it lingers; keeps data."""
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        client = self._quick_client(1.0)
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown(nosave=True, now=True, force=True)
        client.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        self._process = None

    def restart(self, timeout: float = 5.0) -> None:
        """Stop and start again on the same port and data directory (AOF brings the data back)."""
        self.stop(timeout=timeout)
        self.start()

    def close(self) -> None:
        """Stop the process and remove the directory if this server created it. Idempotent."""
        try:
            self.stop()
        finally:
            self._closed = True
            unregister_for_cleanup(self)
            if self._owns_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=3.0)
        self._process = None

    # -- configuration ---------------------------------------------------------------------------

    def config_lines(self) -> Iterator[str]:
        """The config file, line by line (secrets included: the file is ``0600``)."""
        yield f"bind {self.host}"
        if self.tls is not None:
            yield "port 0"
            yield f"tls-port {self.port}"
            yield f'tls-cert-file "{self.tls.cert_file}"'
            yield f'tls-key-file "{self.tls.key_file}"'
            yield f'tls-ca-cert-file "{self.tls.ca_file}"'
            yield "tls-auth-clients no"
            yield "tls-replication yes"
        else:
            yield f"port {self.port}"
        yield "daemonize no"
        yield f'dir "{self.directory}"'
        yield f'logfile "{self.log_file}"'
        yield "loglevel notice"
        yield 'save ""'
        # Stop at once on SIGTERM/SIGINT instead of waiting up to 10 s for lagging replicas.
        yield "shutdown-on-sigterm nosave now force"
        yield "shutdown-on-sigint nosave now force"
        yield f"appendonly {'yes' if self.appendonly else 'no'}"
        yield f"maxmemory {self.maxmemory}"
        yield f"maxmemory-policy {self.maxmemory_policy}"
        # Replication without the default 5 s wait for more replicas to join a diskless sync.
        yield "repl-diskless-sync-delay 0"
        # Admin fault injection (DEBUG SLEEP, DEBUG RELOAD); ACL still keeps it from the app user.
        yield "enable-debug-command local"
        if self._password is not None:
            yield f"requirepass {self._password}"
        for user in self.users:
            yield user.config_line()
        if self._master_user is not None:
            yield f"masteruser {self._master_user}"
        if self._master_password is not None:
            yield f"masterauth {self._master_password}"
        if self.replicaof is not None:
            yield f"replicaof {self.replicaof[0]} {self.replicaof[1]}"
        for key, value in self.extra_config.items():
            yield f"{key} {value}"

    def _write_config(self) -> None:
        text = "\n".join(self.config_lines()) + "\n"
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log and output (for error messages)."""
        chunks = []
        for path in (self._output_file, self.log_file):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    chunks.append("\n".join(text.splitlines()[-lines:]))
        tail = "\n".join(chunks) or "(empty log)"
        for secret in self._secrets():
            tail = tail.replace(secret, "***")
        return tail

    def _secrets(self) -> list[str]:
        found = [u.password for u in self.users]
        found += [s for s in (self._password, self._master_password) if s]
        return found
