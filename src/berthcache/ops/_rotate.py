"""``rotate-auth-token``: replace the AUTH token without an outage, or change nothing.

ElastiCache accepts two tokens while a rotation is under way (``AuthTokenUpdateStrategy=ROTATE``)
and retires the old one on ``SET``. The steps, each a separate injectable piece:

1. read the current secret and check its token works (:class:`SecretStore`, ``verify``);
2. stage the new token in Secrets Manager as ``AWSPENDING`` (apps still read ``AWSCURRENT``);
3. ``modify_replication_group`` with ROTATE (:class:`TokenSetter`): both tokens valid;
4. verify the new token, and that the old one still works (``verify``: a Redis AUTH + PING);
5. promote the staged secret to ``AWSCURRENT``; wait ``grace`` seconds for apps to reload;
6. ``modify_replication_group`` with SET: only the new token is valid.

A failure up to step 5 rolls back what was done (the staged secret is discarded; if the server
took the new token it is SET back to the old one), so the old token stays valid everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn, Protocol
from urllib.parse import quote, urlsplit

import redis

from berthcache import AuthenticationError, CacheConfig, CacheError
from berthcache._exceptions import map_errors
from berthcache.ops._aws import AwsClients, aws_errors
from berthcache.ops._connection import read_secret
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._progress import Report, silent

__all__ = [
    "ElastiCacheTokenSetter",
    "RotationAborted",
    "RotationReport",
    "SecretStore",
    "SecretsManagerStore",
    "TokenSetter",
    "new_token",
    "redis_verifier",
    "rotate_auth_token",
]

Verifier = Callable[[str], None]


class RotationAborted(OpsError):
    """The rotation stopped; ``report`` says which steps ran and what was rolled back."""

    def __init__(self, message: str, code: ExitCode, report: RotationReport) -> None:
        super().__init__(message, code)
        self.report = report


class SecretStore(Protocol):
    """Where apps read the token (Secrets Manager in production)."""

    def current(self) -> dict[str, Any]: ...
    def stage(self, value: dict[str, Any]) -> str: ...
    def promote(self, version_id: str) -> None: ...
    def discard(self, version_id: str) -> None: ...


class TokenSetter(Protocol):
    """What the server accepts (ElastiCache's ``modify_replication_group`` in production)."""

    def rotate(self, token: str) -> None: ...
    def set(self, token: str) -> None: ...


@dataclasses.dataclass
class RotationReport:
    """The steps done, in order, and whether the rotation completed or was rolled back."""

    steps: list[str] = dataclasses.field(default_factory=list)
    completed: bool = False
    rolled_back: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def new_token() -> str:
    """64 hex characters: inside ElastiCache's 16-128 printable characters, no @ " / ."""
    return secrets.token_hex(32)


def rotate_auth_token(
    store: SecretStore,
    setter: TokenSetter,
    verify: Verifier,
    *,
    token: str | None = None,
    grace: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: Report = silent,
    tick: float = 5.0,
) -> RotationReport:
    """Run the rotation; raises :class:`OpsError` (the report on ``.report``) if it aborts.

    ``progress(what, detail)`` hears each step before it starts and, every ``tick`` seconds of
    the grace period, how long is left."""
    report = RotationReport()
    current = store.current()
    old = current.get("password")
    if not isinstance(old, str) or not old:
        raise OpsError("rotate-auth-token: the secret has no 'password' to rotate", ExitCode.USAGE)
    fresh = token or new_token()
    if fresh == old:
        raise OpsError("rotate-auth-token: the new token equals the current one", ExitCode.USAGE)

    def abort(
        step: str, exc: BaseException, *, server_has_new: bool, version: str | None
    ) -> NoReturn:
        report.error = f"{step}: {_one_line(exc)}"
        cleanup: list[str] = []
        if server_has_new:
            try:
                setter.set(old)
                cleanup.append("server SET back to the old token")
            except Exception as undo:
                cleanup.append(f"could not SET the old token back ({_one_line(undo)})")
        if version is not None:
            try:
                store.discard(version)
                cleanup.append("staged secret discarded")
            except Exception as undo:
                cleanup.append(f"could not discard the staged secret ({_one_line(undo)})")
        report.rolled_back = True
        report.steps.append("rolled back: " + ("; ".join(cleanup) or "nothing had changed"))
        raise RotationAborted(
            f"rotate-auth-token aborted at '{step}': {_one_line(exc)}; the old token is still "
            "valid" + (f" ({'; '.join(cleanup)})" if cleanup else ""),
            exc.code if isinstance(exc, OpsError) else ExitCode.FAILED,
            report,
        ) from exc

    progress("verifying the current token (AUTH + PING)", "")
    try:
        verify(old)
    except Exception as exc:
        abort("verify current token", exc, server_has_new=False, version=None)
    report.steps.append("current token verified")

    version: str | None = None
    progress("staging the new token in the secret (AWSPENDING)", "")
    try:
        version = store.stage(_with_token(current, fresh))
    except Exception as exc:
        abort("stage new token in the secret", exc, server_has_new=False, version=None)
    report.steps.append("new token staged in the secret (AWSPENDING)")

    progress("modify_replication_group ROTATE: both tokens valid", "")
    try:
        setter.rotate(fresh)
    except Exception as exc:
        # ROTATE may have been applied before the error: SET the old token back to be sure.
        abort("modify_replication_group ROTATE", exc, server_has_new=True, version=version)
    report.steps.append("server accepts both tokens (ROTATE)")

    progress("verifying the new and the old token", "")
    for which, value in (("new", fresh), ("old", old)):
        try:
            verify(value)
        except Exception as exc:
            abort(f"verify {which} token", exc, server_has_new=True, version=version)
    report.steps.append("new and old token verified")

    assert version is not None
    progress("promoting the secret to AWSCURRENT", "")
    try:
        store.promote(version)
    except Exception as exc:
        abort("promote the secret to AWSCURRENT", exc, server_has_new=True, version=version)
    report.steps.append("secret now holds the new token (AWSCURRENT)")

    if grace > 0:
        remaining = grace
        while remaining > 0:
            progress(
                f"grace period: waiting {grace:g} s for apps to reload the secret",
                f"{remaining:.0f} s left; both tokens valid",
            )
            step = min(remaining, tick)
            sleep(step)
            remaining -= step
        report.steps.append(f"waited {grace:g} s for clients to reload the secret")

    progress("modify_replication_group SET: retiring the old token", "")
    try:
        setter.set(fresh)
        verify(fresh)
    except Exception as exc:
        report.error = f"SET: {_one_line(exc)}"
        raise RotationAborted(
            f"rotate-auth-token: the secret and the server hold the new token, but retiring the "
            f"old one failed: {_one_line(exc)}; the old token is still valid — re-run the SET "
            "step (modify_replication_group AuthTokenUpdateStrategy=SET) when fixed",
            ExitCode.FAILED,
            report,
        ) from exc
    report.steps.append("old token retired (SET)")
    report.completed = True
    return report


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OpsError):
        return exc.message
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _with_token(secret: dict[str, Any], token: str) -> dict[str, Any]:
    """The secret with ``password`` (and the password inside ``url``) replaced."""
    updated = {**secret, "password": token}
    url = secret.get("url")
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        user = quote(parts.username or "", safe="") if parts.username else ""
        updated["url"] = parts._replace(netloc=f"{user}:{quote(token, safe='')}@{host}").geturl()
    return updated


def redis_verifier(config: CacheConfig) -> Verifier:
    """``verify(token)``: AUTH with ``token`` (as ``config``'s user) and PING; raises
    :class:`OpsError` naming why if that fails. Sends nothing else."""

    def verify(token: str) -> None:
        client = redis.Redis(
            **{**config.connection_kwargs(), "password": token, "max_connections": 1}
        )
        try:
            with map_errors(secrets=[token, config.password]):
                client.ping()
        except AuthenticationError:
            raise OpsError(f"{config.url} refused the token (WRONGPASS)", ExitCode.REDIS) from None
        except CacheError as exc:
            raise OpsError(f"{config.url}: {exc}", ExitCode.REDIS) from None
        finally:
            client.close()

    return verify


class SecretsManagerStore:
    """:class:`SecretStore` on Secrets Manager staging labels (AWSPENDING -> AWSCURRENT)."""

    def __init__(self, clients: AwsClients, secret_id: str) -> None:
        self._clients = clients
        self.secret_id = secret_id

    def current(self) -> dict[str, Any]:
        return read_secret(self._clients, self.secret_id)

    def stage(self, value: dict[str, Any]) -> str:
        with aws_errors("secretsmanager", f"secret {self.secret_id}"):
            answer = self._clients.secretsmanager.put_secret_value(
                SecretId=self.secret_id,
                SecretString=json.dumps(value),
                VersionStages=["AWSPENDING"],
            )
        return str(answer["VersionId"])

    def _current_version(self) -> str | None:
        with aws_errors("secretsmanager", f"secret {self.secret_id}"):
            described = self._clients.secretsmanager.describe_secret(SecretId=self.secret_id)
        for version, stages in (described.get("VersionIdsToStages") or {}).items():
            if "AWSCURRENT" in stages:
                return version
        return None

    def promote(self, version_id: str) -> None:
        old = self._current_version()
        with aws_errors("secretsmanager", f"secret {self.secret_id}"):
            sm = self._clients.secretsmanager
            if old is not None and old != version_id:
                sm.update_secret_version_stage(
                    SecretId=self.secret_id,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=version_id,
                    RemoveFromVersionId=old,
                )
            else:
                sm.update_secret_version_stage(
                    SecretId=self.secret_id, VersionStage="AWSCURRENT", MoveToVersionId=version_id
                )
            sm.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
            )

    def discard(self, version_id: str) -> None:
        with aws_errors("secretsmanager", f"secret {self.secret_id}"):
            self._clients.secretsmanager.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
            )


class ElastiCacheTokenSetter:
    """:class:`TokenSetter` on ``modify_replication_group`` (ROTATE / SET, applied now), waiting
    for the group to be ``available`` again after each change."""

    def __init__(
        self,
        clients: AwsClients,
        group_id: str,
        *,
        poll: float = 15.0,
        timeout: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Report = silent,
    ) -> None:
        self._clients = clients
        self.group_id = group_id
        self._poll, self._timeout, self._sleep, self._clock = poll, timeout, sleep, clock
        self._progress = progress

    def _modify(self, token: str, strategy: str) -> None:
        with aws_errors("elasticache", f"replication group {self.group_id!r}"):
            self._clients.elasticache.modify_replication_group(
                ReplicationGroupId=self.group_id,
                AuthToken=token,
                AuthTokenUpdateStrategy=strategy,  # type: ignore[arg-type]
                ApplyImmediately=True,
            )
        self._wait_available()

    def _wait_available(self) -> None:
        deadline = self._clock() + self._timeout
        while True:
            with aws_errors("elasticache", f"replication group {self.group_id!r}"):
                groups = self._clients.elasticache.describe_replication_groups(
                    ReplicationGroupId=self.group_id
                )
            status = groups["ReplicationGroups"][0].get("Status")
            if status == "available":
                return
            self._progress(
                f"waiting for replication group {self.group_id} to be available",
                f"status: {status}; gives up after {self._timeout:.0f} s",
            )
            if self._clock() >= deadline:
                raise OpsError(
                    f"replication group {self.group_id!r} not available after "
                    f"{self._timeout:.0f} s",
                    ExitCode.AWS,
                )
            self._sleep(self._poll)

    def rotate(self, token: str) -> None:
        self._modify(token, "ROTATE")

    def set(self, token: str) -> None:
        self._modify(token, "SET")
