"""Helpers shared by the bench scripts: databases, Redis, processes, CPU time, the machine.

Everything the benches start is stopped in ``finally`` blocks by its own pid, and every wait has
a deadline. The benches use one database, ``dispatch_bench`` (dropped and created by each run),
Redis db 8, the Q cluster name ``bench`` and ports 8100-8299: run them one at a time.
"""

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
DB_NAME = "dispatch_bench"
CLUSTER_NAME = "bench"
CRON_SECRET = "bench-cron-secret-0123456789"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def exit_on_sigterm() -> None:
    """SIGTERM ends a bench through its ``finally`` blocks, so what it started is stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def check_names(db_name: str) -> None:
    if db_name != DB_NAME:
        raise SystemExit(f"refusing database {db_name!r}: the benches use {DB_NAME!r} only")
    if not REDIS_URL.rstrip("/").endswith("/8"):
        raise SystemExit(f"refusing Redis {REDIS_URL!r}: the benches use db 8 only")


def pg_admin():
    import psycopg

    return psycopg.connect(f"{PG_URL}/postgres", autocommit=True)


def recreate_database(db_name: str) -> None:
    check_names(db_name)
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def drop_database(db_name: str) -> None:
    check_names(db_name)
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def redis_flush() -> None:
    import redis

    check_names(DB_NAME)
    redis.Redis.from_url(REDIS_URL).flushdb()


def bench_env(*, broker: str, **extra) -> dict:
    """The environment of every process a bench starts: bench settings, the bench database, its
    broker (``orm`` or ``redis``), the bench's Q cluster name."""
    db_name = DB_NAME
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("CRON_", "BACKGROUND_JOBS_", "LEDGER_", "Q_", "DJANGO_"))
                   or k in ("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_SECRET_KEY="bench-only-secret-key-not-for-production-0123456789",
        DATABASE_URL=f"{PG_URL}/{db_name}",
        CRON_SECRET=CRON_SECRET,
        Q_CLUSTER_NAME=CLUSTER_NAME,
        DISPATCH_VAR_DIR=str(RESULTS / "var"),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    if broker == "redis":
        env["REDIS_URL"] = REDIS_URL
    elif broker != "orm":
        raise ValueError(broker)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env: dict, *args: str, timeout: float = 300) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=timeout)


def start(args: list[str], env: dict, log_name: str) -> subprocess.Popen:
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = open(RESULTS / log_name, "ab")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_gunicorn(env: dict, *, port: int, log_name: str, probe: str, probe_status: int,
                   workers: int = 2, threads: int = 2) -> subprocess.Popen:
    """gunicorn with the project's ``gunicorn.conf.py`` (gthread ``workers`` x ``threads``),
    returned once ``GET probe`` answers ``probe_status``."""
    import http.client

    process = start(
        [PYTHON, "-m", "gunicorn", "dispatch_project.wsgi:application",
         "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
         "--backlog", "2048", "--graceful-timeout", "5", "--log-level", "warning"],
        env, log_name)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see bench/results/{log_name}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", probe)
            return conn.getresponse().status == probe_status
        except OSError:
            return False

    wait_until(ready, timeout=30, interval=0.2, what="gunicorn")
    return process


def stop(process: subprocess.Popen | None, *, timeout: float = 20) -> None:
    """SIGTERM to the process itself (graceful for gunicorn and qcluster), then SIGKILL to its
    own session if it has not gone within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, ...), or None
    when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its live descendants."""
    total = 0
    for p in descendants(pid):
        if (fields := _stat(p)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "loadavg_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def save_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def settled(count, *, pause: float = 0.3, timeout: float = 30) -> int:
    """``count()`` once two readings ``pause`` seconds apart agree: the requests a load
    generator left in flight when it stopped have finished."""
    readings = [count()]

    def agree() -> bool:
        time.sleep(pause)
        readings.append(count())
        return readings[-1] == readings[-2]

    wait_until(agree, timeout=timeout, interval=0, what="the requests in flight to finish")
    return readings[-1]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def wrk(base: str, *, script: Path, script_args: list[str], seconds: int, connections: int,
        threads: int) -> dict:
    """One ``wrk`` run: the BENCH_JSON line its script prints (``bench/wrk_report.lua``) as a
    dict, with ``rps`` and ``errors``. Its latencies are those of the requests wrk sent: wrk's
    own histogram adds imagined samples after every stall (see wrk_report.lua), kept as
    ``wrk_p99_us`` and ``wrk_mean_us`` for information."""
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(script), base, "--", *script_args]
    env = {**os.environ, "BENCH_WRK_CONNECTIONS": str(connections)}
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                            check=True, env=env).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors",
                                               "status_errors", "timeouts"))
    # Taking wrk's correction back out is exact: one latency per answered request (a request
    # over --timeout is counted as a timeout instead).
    assert result["requests"] - result["timeouts"] <= result["recorded"] <= result["requests"], \
        (result["requests"], result["timeouts"], result["recorded"])
    return result


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def time_statements(cases: dict, requests: int, connection, rounds: int = 5) -> None:
    """Unprofiled wall time per request, and how much of it each kind of statement takes (the
    first words of its SQL, timed around the driver call), cases alternated over rounds so
    that a noisy neighbour weighs on each alike. Also the CPU each request costs this process
    and, on PostgreSQL, the bench database's backends (under load on a small machine the cores
    are shared, so CPU, not wall time, is what sets the rate)."""
    spent = {name: defaultdict(float) for name in cases}
    wall, cpu, server = defaultdict(float), defaultdict(float), defaultdict(float)
    current = []
    postmaster = postmaster_pid() if connection.vendor == "postgresql" else None

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[current[0]][" ".join(sql.split()[:3])[:60]] += time.perf_counter() - started

    per_round = max(1, requests // rounds)
    with connection.execute_wrapper(timed):
        for round_ in range(rounds):
            for name, call in cases.items():
                current[:] = [name]
                server_before = database_backends_cpu(postmaster) if postmaster else 0.0
                cpu_before, started = time.process_time(), time.perf_counter()
                for i in range(per_round):
                    call(round_ * per_round + i + 10_000)
                wall[name] += time.perf_counter() - started
                cpu[name] += time.process_time() - cpu_before
                if postmaster:
                    server[name] += database_backends_cpu(postmaster) - server_before
    total = per_round * rounds
    first = next(iter(cases))
    for name in cases:
        sql = sum(spent[name].values())
        print(f"\n== timing {name}: {wall[name] / total * 1000:.2f} ms per request unprofiled "
              f"({wall[first] / wall[name]:.2f} x the rate of "
              f"{first}), {sql / total * 1000:.2f} ms of it in SQL; CPU per request: "
              f"{cpu[name] / total * 1000:.2f} ms here"
              + (f", {server[name] / total * 1000:.2f} ms database backend" if postmaster else ""))
        for statement, seconds in sorted(spent[name].items(), key=lambda item: -item[1]):
            print(f"   {seconds / total * 1000:6.2f} ms  {statement}")



def postmaster_pid() -> int | None:
    """The local PostgreSQL server's main process (its CPU time includes every backend's), or
    None when it is not on this machine."""
    with pg_admin() as conn:
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def database_backends_cpu(postmaster: int) -> float:
    """User + system CPU time of the server processes serving the bench database (their title
    names it). Other agents' databases on the same server are left out; so are the shared
    writer processes."""
    total = 0
    for pid in descendants(postmaster):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f" {DB_NAME} " in title and (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class CpuMeter:
    """CPU seconds spent by the web server's process tree and by the database's backends while
    a load runs: on a small shared machine the cores are the limit, so a case's CPU per request
    shows where its time goes (wall time hides it). The web server keeps its connections
    (``DATABASE_CONN_MAX_AGE``), so its backends live through a measurement."""

    def __init__(self, web_pid: int) -> None:
        self.web_pid, self.db_pid = web_pid, postmaster_pid()

    def read(self) -> tuple[float, float]:
        return (cpu_seconds(self.web_pid),
                database_backends_cpu(self.db_pid) if self.db_pid else 0.0)

    def workers(self) -> dict[int, float]:
        """CPU seconds of each worker (each direct child of the web server's master)."""
        return {pid: cpu_seconds(pid) for pid in descendants(self.web_pid)
                if pid != self.web_pid and (_stat(pid) or [None, None])[1] == str(self.web_pid)}

    @staticmethod
    def busiest_share(before: dict[int, float], after: dict[int, float]) -> float:
        """The busiest worker's share of the workers' CPU between two ``workers()`` readings:
        0.5 with two workers evenly loaded, 1.0 when one did all the work (a load generator's
        few keep-alive connections all landed on it)."""
        spent = [after[pid] - before.get(pid, 0.0) for pid in after]
        return max(spent) / sum(spent) if sum(spent) > 0 else 0.0

    @staticmethod
    def per_request(before: tuple, after: tuple, requests: int) -> dict:
        return {"web_cpu_ms": (after[0] - before[0]) * 1000 / max(requests, 1),
                "db_cpu_ms": (after[1] - before[1]) * 1000 / max(requests, 1)}
