"""How to connect to the stack's Redis: endpoint from the outputs, token from Secrets Manager
(or the ``connectionUrl`` output), TLS verified with the system CA bundle — or a URL given as is.

The token never appears in a repr or an error message: :class:`Connection` masks it, and
``CacheConfig`` errors name the setting, never its value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from berthcache import CacheConfig, CacheError
from berthcache.ops._aws import AwsClients, aws_errors
from berthcache.ops._errors import ExitCode, OpsError
from berthcache.ops._stack_outputs import StackOutputs, load_outputs

__all__ = [
    "Connection",
    "cache_config_for",
    "default_ca_bundle",
    "outputs_if_given",
    "read_secret",
    "resolve_connection",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Connection:
    """Endpoint and credentials of the stack's Redis (the token masked in repr)."""

    host: str
    port: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    tls: bool = True
    key_prefix: str | None = None
    source: str = ""

    def url(self, *, password: str | None = None, db: int = 0) -> str:
        """``rediss://user:token@host:port/db`` with the real token (never log it)."""
        token = self.password if password is None else password
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or token:
            user = quote(self.username or "", safe="")
            secret = f":{quote(token, safe='')}" if token else ""
            auth = f"{user}{secret}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{db}"

    @property
    def masked_url(self) -> str:
        return self.url(password="***" if self.password else "")


def read_secret(
    clients: AwsClients, secret_id: str, *, version_stage: str = "AWSCURRENT"
) -> dict[str, Any]:
    """The stack secret's JSON (AWSCURRENT unless told); errors name the secret, never its value."""
    with aws_errors("secretsmanager", f"secret {secret_id}"):
        answer = clients.secretsmanager.get_secret_value(
            SecretId=secret_id, VersionStage=version_stage
        )
    raw = answer.get("SecretString")
    if raw is None:
        raise OpsError(f"secret {secret_id}: has no SecretString (binary secret?)", ExitCode.USAGE)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise OpsError(
            f"secret {secret_id}: its value is not JSON (expected host, port, password ...)",
            ExitCode.USAGE,
        ) from None
    if not isinstance(data, dict):
        raise OpsError(f"secret {secret_id}: its value must be a JSON object", ExitCode.USAGE)
    return data


def resolve_connection(outputs: StackOutputs, clients: AwsClients | None = None) -> Connection:
    """Endpoint and port from the outputs, token (and user) from Secrets Manager — or, without a
    ``secretArn`` output, from the ``connectionUrl`` output read with ``--show-secrets``."""
    if outputs.secret_arn:
        secret = read_secret(clients or AwsClients(), outputs.secret_arn)
        host = outputs.primary_endpoint or _str(secret.get("host"))
        port = outputs.port or _int(secret.get("port"))
        password = _str(secret.get("password"))
        if not password:
            raise OpsError(
                f"secret {outputs.secret_arn}: has no 'password' (the AUTH token)", ExitCode.USAGE
            )
        if not host or not port:
            raise OpsError(
                f"{outputs.source}: no endpoint: neither the outputs (primaryEndpoint, port) nor "
                "the secret (host, port) name it",
                ExitCode.USAGE,
            )
        tls = secret.get("tls", True) is not False
        return Connection(
            host=host,
            port=port,
            username=_str(secret.get("username")) or outputs.username,
            password=password,
            tls=tls,
            key_prefix=_str(secret.get("key_prefix")) or outputs.key_prefix,
            source=f"{outputs.source} + secret {outputs.secret_arn}",
        )
    if outputs.connection_url:
        parts = urlsplit(outputs.connection_url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise OpsError(
                f"{outputs.source}: output 'connectionUrl' is not a redis URL", ExitCode.USAGE
            )
        if parts.password is None or parts.password in ("", "[secret]"):
            raise OpsError(
                f"{outputs.source}: 'connectionUrl' is hidden; read the outputs with "
                "--show-secrets or deploy the secret (secretArn)",
                ExitCode.USAGE,
            )
        return Connection(
            host=outputs.primary_endpoint or parts.hostname,
            port=outputs.port or parts.port or 6379,
            username=unquote(parts.username) if parts.username else outputs.username,
            password=unquote(parts.password),
            tls=parts.scheme == "rediss",
            key_prefix=outputs.key_prefix,
            source=outputs.source,
        )
    raise OpsError(
        f"{outputs.source}: no credentials: the outputs have neither 'secretArn' nor "
        "'connectionUrl'",
        ExitCode.USAGE,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def default_ca_bundle() -> str | None:
    """The system CA bundle, else certifi's, else ``None`` (OpenSSL's default paths)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    try:
        import certifi
    except ImportError:
        return None
    bundle: str = certifi.where()
    return bundle


def outputs_if_given(stack: str | None, outputs: Path | None) -> StackOutputs | None:
    """The stack outputs when ``--stack`` or ``--outputs`` was given, else ``None``."""
    if stack is None and outputs is None:
        return None
    return load_outputs(stack=stack, outputs_file=outputs)


def cache_config_for(
    *,
    redis_url: str | None,
    stack: str | None,
    outputs: Path | None,
    tls_ca: Path | None,
    clients: AwsClients,
) -> CacheConfig:
    """``--redis-url`` if given, else the stack's endpoint + secret; TLS verified."""
    ca = str(tls_ca) if tls_ca else None
    try:
        if redis_url:
            return CacheConfig.from_url(redis_url, **({"tls_ca_file": ca} if ca else {}))
        loaded = outputs_if_given(stack, outputs)
        if loaded is None:
            raise OpsError(
                "which endpoint? pass --redis-url URL, --stack NAME or --outputs FILE",
                ExitCode.USAGE,
            )
        connection = resolve_connection(loaded, clients)
        overrides: dict[str, Any] = {}
        if connection.key_prefix:
            overrides["key_prefix"] = connection.key_prefix
        if connection.tls:
            bundle = ca or default_ca_bundle()
            if bundle:
                overrides["tls_ca_file"] = bundle
        return CacheConfig.from_url(connection.url(), **overrides)
    except CacheError as exc:  # ConfigurationError names the setting, never the token
        raise OpsError(f"connection settings: {exc}", ExitCode.USAGE) from None
