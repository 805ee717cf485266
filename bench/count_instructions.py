"""Instructions per request in the web process, counted by valgrind (analysis aid, no target).

    .venv/bin/python bench/count_instructions.py [--broker redis|orm] [--requests 300]

The wrk benches measure the rate, which moves with the machine by tens of percent from one run
to the next (docs/performance.md). Callgrind counts the instructions a process executes instead
of timing it: the same code, inputs and environment give the same count to within 0.2 %,
whatever else the machine is doing, so a change of 1 % in the route's own work shows.

For each case a child process (bench settings, a fresh ``dispatch_bench_ic`` database on
PostgreSQL, the broker chosen) sets Django up, warms up with 30 requests, then makes N
requests through Django's WSGI handler, middleware included, as gunicorn would call it. Two
children run per case, N = 0 and N = ``--requests``; the difference of their totals over N is
one request's instructions. Not counted: gunicorn's HTTP parsing and the kernel's side of
every socket (both the same for every case), the database and Redis servers.

Cases: the dispatch bench's ``baseline``, ``new`` and ``new-floor`` (``bench_dispatch.py``),
and ``duplicate`` (the same window of background-jobs again and again; the first request of a
new minute opens a window, so a run that crosses a minute counts one more).
"""

import argparse
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "dispatch_bench_ic"
WARMUP = 30
PATHS = {  # a case with a query string opens a new window (a new row) per request
    "baseline": ("/bench/baseline", "n={tag}x{number:08d}"),
    "new": ("/api/cron/bench-jobs", "n={tag}x{number:08d}"),
    "new-floor": ("/bench/new-floor", "n={tag}x{number:08d}"),
    "duplicate": ("/api/cron/background-jobs", ""),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="redis", choices=["orm", "redis"])
    parser.add_argument("--cases", default=",".join(PATHS), help=f"any of {','.join(PATHS)}")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    return parser.parse_args()


def child(case: str, count: int) -> None:
    """Runs under valgrind: WARMUP requests, then ``count`` more."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    tag = f"{os.getpid():x}"  # the two children of a case open distinct windows

    path, query = PATHS[case]

    def call(number: int) -> None:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "",
            "QUERY_STRING": query.format(tag=tag, number=number), "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8150", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8150",
            "HTTP_AUTHORIZATION": f"Bearer {common.CRON_SECRET}", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        }
        status = []
        response = handler(environ, lambda line, headers: status.append(line))
        b"".join(response)
        response.close()
        if status[0][:3] not in ("200", "202"):
            raise SystemExit(f"{case}: HTTP {status[0]}")

    for number in range(WARMUP + count):
        call(number)


def instructions(case: str, count: int, env: dict) -> int:
    """The total instructions of one child, as callgrind reports them."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", common.PYTHON,
         __file__, "--child", case, str(count)],
        cwd=common.ROOT, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
        timeout=1800)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or not found:
        raise SystemExit(f"{case} x {count} failed (exit {result.returncode}):\n"
                         f"{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    args = parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if not common.have("valgrind"):
        raise SystemExit("valgrind is missing: apt-get install -y valgrind")
    cases = [case.strip() for case in args.cases.split(",")]
    unknown = set(cases) - set(PATHS)
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(sorted(unknown))}; use {', '.join(PATHS)}")
    env = common.bench_env(db_name=DB_NAME, broker=args.broker, cluster_name="bench-ic",
                           LOG_LEVEL="INFO")
    common.recreate_database(DB_NAME)
    common.manage(env, "migrate", "--no-input", "-v", "0")
    common.redis_flush()
    machine = common.machine()
    print(f"instructions per request in the web process, {args.broker} broker, "
          f"{args.requests} requests per case (valgrind callgrind), {machine['date']}", flush=True)
    per_request = {}
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for case in cases:
                empty, full = pool.map(lambda n, c=case: instructions(c, n, env),
                                       (0, args.requests))
                per_request[case] = (full - empty) / args.requests
                print(f"  {case:10} {per_request[case] / 1e6:7.3f} M", flush=True)
    finally:
        common.redis_flush()
        common.drop_database(DB_NAME)
    reference = per_request.get("baseline")
    lines = ["| case | instructions per request (M) | / baseline |", "| --- | ---: | ---: |"]
    for case, count in per_request.items():
        ratio = f"{count / reference:.2f}" if reference else "-"
        lines.append(f"| {case} | {count / 1e6:.3f} | {ratio} |")
    text = "\n".join(lines)
    print(f"\n{text}")
    path = common.save_results("instructions", {
        "machine": machine, "args": vars(args), "per_request": per_request, "table": text})
    print(f"\ndetails in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
