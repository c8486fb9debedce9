"""A throwaway PostgreSQL cluster for the tests that claim concurrency or multi-process
safety. Uses CHATOPS_TEST_POSTGRES_URL when set; otherwise runs the machine's initdb/pg_ctl
in a temp folder on a free port (as the `postgres` user when we are root, since PostgreSQL
refuses to run as root). Without the binaries the tests skip, unless
CHATOPS_REQUIRE_POSTGRES=1 (CI) turns the skip into a failure."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def unavailable(reason: str) -> None:
    if os.environ.get("CHATOPS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (CHATOPS_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a server URL (without database name) for the length of the block."""
    given = os.environ.get("CHATOPS_TEST_POSTGRES_URL")
    if given:
        yield given.rstrip("/")
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("initdb/pg_ctl not on PATH")
    assert initdb and pg_ctl
    base = Path(tempfile.mkdtemp(prefix="chatops-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    log = base / "server.log"
    try:
        subprocess.run(
            _as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_owner(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c max_connections=200",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"could not start PostgreSQL: {detail.decode(errors='replace')[:500]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the cluster and return its URL."""
    import psycopg

    name = f"chatops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"
