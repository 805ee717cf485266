"""``make run``: the whole service on the embedded default (SQLite + Django-Q's ORM broker), with
fake providers and demo data, so every cron does visible work.

Starts fake EmailBison / availability / booking endpoints (scripts/fake_providers.py) on
FAKE_PROVIDERS_PORT (8765), migrates, makes a demo superuser on the first run (random password,
printed once), loads the demo data on the first run (``manage.py seed_demo``), makes the Django-Q
schedules of every cron (``sync_cron_schedules``; the five outreach crons dispatch to the queue
here, like background-jobs), then runs the web server (DEV_HOST:DEV_PORT, 127.0.0.1:8000) and a
Django-Q cluster until Ctrl-C, which stops both cleanly. Secrets for this machine are generated
once into var/dev.env (never committed).
"""

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import fake_providers

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "var" / "dev.env"
PYTHON = sys.executable
HOST, PORT = os.environ.get("DEV_HOST", "127.0.0.1"), os.environ.get("DEV_PORT", "8000")
FAKE_PORT = int(os.environ.get("FAKE_PROVIDERS_PORT", "8765"))
OUTREACH_CRON_FLAGS = ("CRON_RESPONSE_TIMING_USE_QUEUE", "CRON_APPOINTMENT_RECONCILE_USE_QUEUE",
                       "CRON_FOLLOWUPS_USE_QUEUE", "CRON_AVAILABILITY_USE_QUEUE",
                       "CRON_EMAILBISON_AVAILABILITY_SLOT_USE_QUEUE")
FIRST_WORKSPACE = ("from jobs.models import Client; print(Client.objects.exclude("
                   "emailbison_workspace_id=None).order_by('pk').values_list("
                   "'emailbison_workspace_id', flat=True).first() or '')")
HAS_CLIENTS = "from jobs.models import Client; print(int(Client.objects.exists()))"


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
    for flag in OUTREACH_CRON_FLAGS:  # schedules dispatch through the queue, as in production
        env.setdefault(flag, "true")
    return env


def manage(env, *args, **kwargs):
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs)


def django_print(env, code: str) -> str:
    """What ``code`` prints, run by ``manage.py shell``."""
    return manage(env, "shell", "-v", "0", "-c", code, capture_output=True,
                  text=True).stdout.strip()


def wait_until_listening(host: str, port: int, process, seconds: float = 30) -> None:
    """Return once the web server accepts connections (or has died, or ``seconds`` passed), so
    the commands printed next work when pasted at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)


def sample_webhook(url: str, token: str, workspace_id: str) -> str:
    """A curl that sends an EMAIL_SENT for the demo workspace (a new scheduled email id each
    time this is printed, so it is processed rather than answered as a duplicate)."""
    email_id = int(time.time())
    body = {
        "event": {"type": "EMAIL_SENT", "name": "Email Sent", "workspace_id": workspace_id,
                  "workspace_name": "Demo"},
        "data": {
            "campaign": {"id": 12, "name": "Demo campaign"},
            "lead": {"id": 5551, "email": "ada@example.com", "first_name": "Ada",
                     "last_name": "Lovelace"},
            "scheduled_email": {"id": email_id, "lead_id": 5551, "email_subject": "Hello Ada",
                                "email_body": "Hi Ada, would a short call help?",
                                "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "sender_email": {"id": 3, "name": "Sam", "email": "sam@demo.example"},
        },
    }
    return (f"curl -i -X POST -H 'X-Webhook-Token: {token}' -H 'Content-Type: "
            f"application/json' -d {shlex.quote(json.dumps(body))} {url}/api/webhooks/email")


def main() -> int:
    env = dev_environment()
    try:
        providers = fake_providers.start("127.0.0.1", FAKE_PORT)
    except OSError as error:
        print(f"Cannot start the fake providers on 127.0.0.1:{FAKE_PORT} ({error}); set "
              f"FAKE_PROVIDERS_PORT to a free port.", file=sys.stderr)
        return 1
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "bootstrap_demo")
    if django_print(env, HAS_CLIENTS) != "1":
        manage(env, "seed_demo", "--provider-base-url", providers.base_url)
    manage(env, "sync_cron_schedules")
    workspace_id = django_print(env, FIRST_WORKSPACE)
    web = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
    )
    cluster = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env)
    wait_until_listening(HOST, int(PORT), web)
    url = f"http://{HOST}:{PORT}"
    print(
        f"\n  Service:  {url}   (another port: DEV_PORT=<port> make run)\n"
        f"  Admin:    {url}/admin/\n"
        f"  Fake providers (EmailBison, availability, booking): {providers.base_url}\n"
        f"  CRON_SECRET={env['CRON_SECRET']}\n  WEBHOOK_TOKEN={env['WEBHOOK_TOKEN']}\n"
        f"  Every cron runs on its schedule; to trigger one now:\n"
        f"    curl -i -H 'Authorization: Bearer {env['CRON_SECRET']}' "
        f"{url}/api/cron/background-jobs\n"
        f"  A webhook (EMAIL_SENT for the demo workspace {workspace_id or '(none)'}):\n"
        f"    {sample_webhook(url, env['WEBHOOK_TOKEN'], workspace_id)}\n"
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
    providers.shutdown()
    print("Stopped.", flush=True)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
