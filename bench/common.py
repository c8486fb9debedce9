"""Shared pieces of the benchmarks: the machine, tables, percentiles, temp folders, a
throwaway PostgreSQL (tests/postgres.py) and the processes the benchmarks start.

Nothing here fails on a number: a missed target is printed as MISS, for information.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "examples" / "workspace.yml"
ARTICLES = ROOT / "examples" / "kb"  # the help articles the demo ships
SECRET = "bench-signing-secret"
TRIAGE = "C0TRIAGE"


# --------------------------------------------------------------------------- the machine


def machine() -> str:
    """CPU model, cores and Python, for the head of every report."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count() or 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {mem:.0f} GiB RAM"
    except (ValueError, OSError):
        memory = ""
    return (
        f"{model}, {cores} cores{memory}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


def load_average() -> str:
    """The 1/5/15-minute load average: other work on the machine skews every number."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def postgres_version() -> str:
    pg = shutil.which("postgres") or shutil.which("pg_ctl")
    if not pg:
        return "not installed"
    try:
        out = subprocess.run([pg, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# --------------------------------------------------------------------------- numbers


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    return f"{seconds * 1000:.1f}"


def ratio(a: float, b: float) -> float:
    if not b or a != a or b != b:
        return float("nan")
    return a / b


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A plain text table (also valid Markdown), columns sized to their content."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = []
        for i, cell in enumerate(row):
            parts.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return "| " + " | ".join(parts) + " |"

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.2f}"
    return str(value)


def say(*parts: Any) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------- temp + ports


LOGS_ENV = "CHATOPS_BENCH_LOGS"


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temp folder, removed afterwards; its *.log files are kept in $CHATOPS_BENCH_LOGS
    (when set) under the folder's prefix."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        keep = os.environ.get(LOGS_ENV)
        if keep:
            target = Path(keep) / prefix.strip("-")
            target.mkdir(parents=True, exist_ok=True)
            for log in path.glob("*.log"):
                with contextlib.suppress(OSError):
                    shutil.copy2(log, target / log.name)
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, ok_statuses: tuple[int, ...] = (200,)) -> bool:
    """Poll url until it answers with one of ok_statuses (any HTTP answer if empty)."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as answer:
                if not ok_statuses or answer.status in ok_statuses:
                    return True
        except urllib.error.HTTPError as error:
            if not ok_statuses or error.code in ok_statuses:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- PostgreSQL


class PostgresUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (tests/postgres.py: initdb/pg_ctl as the postgres
    user, fsync=off, max_connections=200); raises PostgresUnavailable without one."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.postgres import postgres_cluster
    except ImportError as exc:  # pytest missing: the helper lives in the test suite
        raise PostgresUnavailable(f"tests/postgres.py not importable: {exc}") from None
    manager = postgres_cluster()
    try:
        url = manager.__enter__()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PostgresUnavailable(str(exc) or type(exc).__name__) from None
    try:
        yield url
    finally:
        manager.__exit__(None, None, None)


def fresh_database(server_url: str) -> str:
    from tests.postgres import fresh_database as make

    return make(server_url)


@contextlib.contextmanager
def empty_database(kind: str, sqlite_file: Path) -> Iterator[str]:
    """The URL of an empty database: `sqlite_file`, or a new database on a throwaway
    PostgreSQL cluster (PostgresUnavailable without one)."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    with postgres() as server:
        yield fresh_database(server)


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process we started, in its own session, with its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
    ):
        self.name = name
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM our child (gunicorn's master stops its workers), then SIGKILL its group."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        # stray grandchildren of our own session (e.g. a gunicorn worker left behind)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log_file.close()

    def log_problems(self) -> dict[str, int]:
        """Counts of ERROR / Traceback / WARNING lines and gunicorn worker timeouts."""
        counts = {"ERROR": 0, "Traceback": 0, "WARNING": 0, "WORKER TIMEOUT": 0}
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                for key in counts:
                    if key in line:
                        counts[key] += 1
        return counts

    def log_samples(self, needle: str, limit: int = 3) -> list[str]:
        found: list[str] = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                if needle in line:
                    found.append(line.strip()[:300])
                    if len(found) >= limit:
                        break
        return found


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# --------------------------------------------------------------------------- apps


def bolt_app(client_class: type[WebClient] | None = None, **options: Any) -> App:
    """A Bolt `App` as anyone would write one, configured from the environment the
    benchmarks give every server (signing secret, bot token, the stand-in's URL)."""
    from slack_bolt import App
    from slack_sdk import WebClient

    return App(
        client=(client_class or WebClient)(
            token=os.environ.get("SLACK_BOT_TOKEN", "xoxb-test"),
            base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        ),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,
        process_before_response=False,
        **options,
    )
