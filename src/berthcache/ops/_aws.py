"""boto3 clients with the AWS CLI's region order, and the one place where botocore errors become
one-line :class:`OpsError` messages.

The region is ``--region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's
``region`` — the AWS CLI v2 order (and the AWS SDKs' shared one). boto3 on its own reads only
``AWS_DEFAULT_REGION`` and the profile, so :func:`resolve_region` supplies the first two.
Credentials, ``AWS_PROFILE`` (or ``--profile``) and ``AWS_ENDPOINT_URL`` are boto3's own chain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from berthcache.ops._errors import ExitCode, OpsError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["AwsClients", "RegionChoice", "aws_errors", "describe_aws_error", "resolve_region"]

#: What to set when no region is found (the error names every way, in the order they count).
NO_REGION_HINT = (
    "pass --region REGION, or set AWS_REGION (or AWS_DEFAULT_REGION), or give the profile a "
    "region (`aws configure set region REGION`)"
)

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


@dataclasses.dataclass(frozen=True)
class RegionChoice:
    """The region :func:`resolve_region` found and where from (``None``: boto3 decides from
    ``AWS_DEFAULT_REGION`` or the profile)."""

    region: str | None
    source: str


def resolve_region(option: str | None, environ: Mapping[str, str] | None = None) -> RegionChoice:
    """``--region``, else ``AWS_REGION``, else nothing yet: boto3 then reads
    ``AWS_DEFAULT_REGION`` and the profile itself. Empty values count as unset."""
    env = os.environ if environ is None else environ
    if option is not None:
        if not option.strip():
            raise OpsError("--region is empty; give a region such as eu-west-1", ExitCode.USAGE)
        return RegionChoice(option.strip(), "--region")
    from_env = env.get("AWS_REGION", "").strip()
    if from_env:
        return RegionChoice(from_env, "AWS_REGION")
    return RegionChoice(None, "boto3")


class AwsClients:
    """Lazily made boto3 clients sharing one session. ``region`` / ``profile`` are the CLI's
    ``--region`` / ``--profile`` (``None``: the environment decides, see the module). Tests pass
    their own session or clients."""

    def __init__(
        self,
        session: Any | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        **clients: Any,
    ) -> None:
        self._session = session
        self._region = region
        self._profile = profile
        self._clients: dict[str, Any] = dict(clients)

    @property
    def session(self) -> Any:
        """The boto3 session, made on first use; raises :class:`OpsError` naming what to set
        when no region is found anywhere."""
        if self._session is None:
            with aws_errors("aws", "open a session"):
                import boto3

                if self._profile is not None and not self._profile.strip():
                    raise OpsError("--profile is empty; give a profile name", ExitCode.USAGE)
                choice = resolve_region(self._region)
                session = boto3.session.Session(
                    profile_name=self._profile or None, region_name=choice.region
                )
                if not session.region_name:
                    profile = session.profile_name
                    raise OpsError(
                        f"no AWS region configured (profile {profile!r} has none): "
                        + NO_REGION_HINT,
                        ExitCode.AWS,
                    )
                self._session = session
        return self._session

    @property
    def region(self) -> str | None:
        """The region the clients talk to (``None`` only for hand-made clients)."""
        if self._session is None and self._clients:
            first = next(iter(self._clients.values()))
            return getattr(getattr(first, "meta", None), "region_name", None)
        return str(self.session.region_name)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            session: Any = self.session
            with aws_errors(service, "create client"):
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
        return OpsError(f"no AWS region configured ({what}): {NO_REGION_HINT}", ExitCode.AWS)
    if isinstance(exc, bx.ProfileNotFound):
        return OpsError(
            f"AWS profile not found ({what}): {exc}; check --profile / AWS_PROFILE against "
            "`aws configure list-profiles`",
            ExitCode.AWS,
        )
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
