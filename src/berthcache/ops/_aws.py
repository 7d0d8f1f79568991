"""boto3 clients through the default credential and region chain, and the one place where
botocore errors become one-line :class:`OpsError` messages.

``AWS_PROFILE``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL`` work as with
the AWS CLI because nothing here overrides boto3's own resolution.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from berthcache.ops._errors import ExitCode, OpsError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["AwsClients", "aws_errors", "describe_aws_error"]

_EXPIRED = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "InvalidUserID.NotFound",
}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
_NOT_FOUND = {
    "ReplicationGroupNotFoundFault": "replication group",
    "CacheClusterNotFound": "cache cluster",
    "NodeGroupNotFoundFault": "node group",
    "ResourceNotFoundException": "resource",
}
_SERVICE_PREFIX = {
    "elasticache": "elasticache",
    "cloudwatch": "cloudwatch",
    "secretsmanager": "secretsmanager",
    "sns": "sns",
}


class AwsClients:
    """Lazily made boto3 clients sharing one session (default chain). Tests pass their own."""

    def __init__(self, session: Any | None = None, **clients: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = dict(clients)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            with aws_errors(service, "create client"):
                if self._session is None:
                    import boto3

                    self._session = boto3.session.Session()
                session: Any = self._session
                self._clients[service] = session.client(service)
        return self._clients[service]

    @property
    def elasticache(self) -> ElastiCacheClient:
        client: ElastiCacheClient = self._client("elasticache")
        return client

    @property
    def cloudwatch(self) -> CloudWatchClient:
        client: CloudWatchClient = self._client("cloudwatch")
        return client

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._client("secretsmanager")
        return client


def describe_aws_error(exc: BaseException, service: str, what: str) -> OpsError | None:
    """The one-line :class:`OpsError` for a botocore error, or ``None`` if it is not one."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return OpsError(
            f"no AWS credentials found ({what}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or log in with `aws sso login`",
            ExitCode.AWS,
        )
    if isinstance(exc, bx.NoRegionError):
        return OpsError(
            f"no AWS region configured ({what}): set AWS_REGION or use a profile with a region",
            ExitCode.AWS,
        )
    if isinstance(exc, bx.ProfileNotFound):
        return OpsError(f"AWS profile not found ({what}): {exc}", ExitCode.AWS)
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOTokenLoadError):
        return OpsError(
            f"AWS SSO session expired ({what}): run `aws sso login` and retry", ExitCode.AWS
        )
    if isinstance(exc, bx.EndpointConnectionError):
        return OpsError(
            f"cannot reach the AWS {service} endpoint ({what}): {exc}; check the network, "
            "AWS_REGION and AWS_ENDPOINT_URL",
            ExitCode.AWS,
        )
    if isinstance(exc, bx.ParamValidationError):
        return OpsError(f"invalid request to AWS {service} ({what}): {exc}", ExitCode.USAGE)
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip() or "no detail"
        operation = exc.operation_name
        if code in _EXPIRED:
            return OpsError(
                f"AWS credentials expired or invalid ({code}) calling {operation} ({what}): "
                "refresh them (`aws sso login` or a new session token) and retry",
                ExitCode.AWS,
            )
        if code in _DENIED:
            action = f"{_SERVICE_PREFIX.get(service, service)}:{operation}"
            return OpsError(
                f"permission denied ({what}): the caller may not {action} ({code})",
                ExitCode.AWS,
            )
        if code in _THROTTLED:
            return OpsError(f"AWS throttled {operation} ({what}); retry later", ExitCode.AWS)
        if code in _NOT_FOUND:
            return OpsError(f"{what}: not found ({code}: {message})", ExitCode.AWS)
        return OpsError(f"AWS {operation} failed ({what}): {code}: {message}", ExitCode.AWS)
    if isinstance(exc, bx.BotoCoreError):
        return OpsError(f"AWS {service} call failed ({what}): {exc}", ExitCode.AWS)
    return None


@contextlib.contextmanager
def aws_errors(service: str, what: str) -> Iterator[None]:
    """Turn botocore errors raised in the block into :class:`OpsError` (``from`` the original)."""
    try:
        yield
    except OpsError:
        raise
    except Exception as exc:
        mapped = describe_aws_error(exc, service, what)
        if mapped is None:
            raise
        raise mapped from exc
