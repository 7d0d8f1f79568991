"""The ``stack`` target: endpoint from an outputs file, token from (moto) Secrets Manager, and
``berthcache-ops conformance --outputs`` passing against the local TLS harness standing in for
ElastiCache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from berthcache.testing import LocalRedis, UsageError
from berthcache.testing._stack import default_ca_bundle, stack_target
from berthcache.testing.plugin import LocalRedisFactory


def deployed(group: LocalRedis, tmp_path: Path) -> Path:
    """Outputs + secret as `pulumi up` would leave them, pointing at the local group."""
    user, password = group.users["app"]
    host, port = group.endpoint
    arn = boto3.client("secretsmanager").create_secret(
        Name="berthcache/test/bc-local",
        SecretString=json.dumps(
            {
                "engine": "redis",
                "host": host,
                "port": port,
                "tls": True,
                "username": user,
                "password": password,
                "key_prefix": "berthcare:",
                "replication_group_id": "bc-local",
            }
        ),
    )["ARN"]
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "replicationGroupId": "bc-local",
                "primaryEndpoint": host,
                "port": port,
                "memberClusters": ["bc-local-001"],
                "secretArn": arn,
                "keyPrefix": "berthcare:",
                "username": user,
            }
        )
    )
    return path


def test_conformance_command_passes_on_the_stack_target(
    moto_server: str, tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    group = local_redis_factory()
    assert group.ca_file is not None
    outputs = deployed(group, tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "berthcache.ops",
            "conformance",
            "--outputs",
            str(outputs),
            "--tls-ca",
            group.ca_file,
            "-k",
            "c05 or c15 or c16",
            "-rs",
        ],
        cwd=tmp_path,  # any directory: the suite is the packaged berthcache.conformance
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=dict(os.environ),
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    # nothing failed or skipped; one warning: the RBAC app user may not SCAN its namespace
    assert re.search(r"=+ \d+ passed, \d+ deselected, 1 warning in [\d.]+s =+$", out, re.M), out[
        -3000:
    ]
    assert "could not delete test keys under 'berthcare:bc-test-" in out
    # the options went to the plugin, which chose the stack target from them
    assert "berthcache target: stack (from --stack-outputs)" in done.stdout
    # Only targets the suite started have "admin"; C16's OOM check runs on a server of its own.
    assert "requires admin" not in out
    assert re.search(r"^C16 .*PASS\s*$", out, re.M), out[-3000:]
    _, password = group.users["app"]
    assert password not in out
    # The RBAC app user may not SCAN, so the run's namespace stays (to its TTLs); nothing
    # outside it was written.
    named = re.search(r"could not delete test keys under '([^']+)'", out)
    assert named is not None, out[-3000:]
    admin = group.admin_client()
    try:
        left = [key.decode() for key in admin.scan_iter(count=500)]
    finally:
        admin.close()
    assert all(key.startswith(named.group(1)) for key in left), left


def test_stack_target_resolves_endpoint_and_token(
    moto_server: str, tmp_path: Path, local_redis_factory: LocalRedisFactory
) -> None:
    group = local_redis_factory()
    target = stack_target(outputs_file=str(deployed(group, tmp_path)), tls_ca_file=group.ca_file)
    assert target.name == "stack"
    assert target.capabilities == frozenset({"tls", "auth", "standalone"})  # never admin
    assert not target.started_by_us
    _, password = group.users["app"]
    assert password not in repr(target)
    client = target.client()
    try:
        assert client.ping()
    finally:
        client.close()


def test_stack_target_without_a_stack_skips_with_the_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match="pass --stack NAME"):
        stack_target()


def test_stack_target_without_the_ops_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 is imported only when a client is made: the guard must ask for it up front."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError, as if absent
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"primaryEndpoint": "h", "port": 6379, "secretArn": "arn:x"}))
    with pytest.raises(UsageError, match=re.escape("pip install 'berthcache[ops]'")):
        stack_target(outputs_file=str(path))


def test_stack_target_errors_name_what_is_missing(mocked_aws: None, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        stack_target(outputs_file=str(tmp_path / "missing.json"))
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"primaryEndpoint": "h", "port": 6379}))
    with pytest.raises(UsageError, match="neither 'secretArn' nor 'connectionUrl'"):
        stack_target(outputs_file=str(path))
    path.write_text(
        json.dumps(
            {
                "primaryEndpoint": "h",
                "port": 6379,
                "secretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            }
        )
    )
    with pytest.raises(UsageError, match=r"secret arn:aws:secretsmanager.*not found"):
        stack_target(outputs_file=str(path))


def test_default_ca_bundle_is_the_systems_else_certifis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    import certifi

    system = tmp_path / "system-ca.pem"
    system.write_text("-----BEGIN CERTIFICATE-----\n")
    paths = ssl.get_default_verify_paths()
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths._replace(cafile=str(system)))
    assert default_ca_bundle() == str(system)
    monkeypatch.setattr(
        ssl,
        "get_default_verify_paths",
        lambda: paths._replace(
            cafile=str(tmp_path / "absent.pem"), openssl_cafile=str(tmp_path / "absent.pem")
        ),
    )
    assert default_ca_bundle() == certifi.where()  # no system bundle: certifi's
    assert Path(certifi.where()).is_file()
