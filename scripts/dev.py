"""``make run``: the whole service on the embedded default (SQLite + Django-Q's ORM broker).

Migrates, makes a demo superuser on the first run (random password, printed once), then runs
the web server and a Django-Q cluster together until Ctrl-C, which stops both cleanly.
Secrets for this machine are generated once into var/dev.env (never committed).
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "var" / "dev.env"
PYTHON = sys.executable
HOST, PORT = os.environ.get("DEV_HOST", "127.0.0.1"), os.environ.get("DEV_PORT", "8000")


def dev_environment() -> dict:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not ENV_FILE.exists():
        ENV_FILE.write_text(
            "DJANGO_DEBUG=true\n"
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"CRON_SECRET={secrets.token_urlsafe(24)}\n"
            f"WEBHOOK_TOKEN={secrets.token_urlsafe(24)}\n"
        )
        ENV_FILE.chmod(0o600)
    env = dict(os.environ)
    for line in ENV_FILE.read_text().splitlines():
        name, _, value = line.partition("=")
        if name and name not in env:
            env[name] = value
    env.setdefault("DJANGO_SETTINGS_MODULE", "dispatch_project.settings")
    env.setdefault("Q_LOG_LEVEL", "INFO")  # show the cluster's work in the terminal
    env.setdefault("LOG_FORMAT", "text")  # readable lines in the terminal (production: JSON)
    return env


def manage(env, *args, **kwargs):
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs)


def main() -> int:
    env = dev_environment()
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "bootstrap_demo")
    web = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
    )
    cluster = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env)
    url = f"http://{HOST}:{PORT}"
    print(
        f"\n  Service:  {url}\n  Admin:    {url}/admin/\n"
        f"  CRON_SECRET={env['CRON_SECRET']}\n"
        f"  Try:      curl -i -H 'Authorization: Bearer {env['CRON_SECRET']}' "
        f"{url}/api/cron/background-jobs\n"
        f"  Secrets:  {ENV_FILE}\n  Ctrl-C stops the web server and the cluster.\n",
        flush=True,
    )
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and web.poll() is None and cluster.poll() is None:
        time.sleep(0.2)
    # SIGTERM to the cluster's main process is graceful (workers finish their task).
    for process in (cluster, web):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in (cluster, web):
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    print("Stopped.", flush=True)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
