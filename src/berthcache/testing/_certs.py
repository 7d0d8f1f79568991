"""A throw-away certificate authority per test run, so the harness can run Redis TLS-only.

A fresh CA (made with ``trustme``) signs one server certificate valid for ``127.0.0.1``, ``::1``
and ``localhost``; clients verify against the CA file, exactly as they verify ElastiCache against
the Amazon root. Nothing is trusted system-wide and the files live only in the harness temp dir.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import trustme

__all__ = ["SERVER_NAMES", "TLSFiles", "make_tls_files"]

#: Names in the server certificate: every way a test may address a local server.
SERVER_NAMES: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """PEM files for a TLS-only redis-server and its clients."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """Create a CA and a server certificate in ``directory`` (key files readable by us only)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="berthcache test CA")
    server = ca.issue_cert(*SERVER_NAMES)
    files = TLSFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    with open(files.cert_file, "wb") as out:
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(server.private_key_pem.bytes())
    return files
