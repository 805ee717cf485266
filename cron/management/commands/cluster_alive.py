import socket

from django.core.management.base import BaseCommand
from django.utils import timezone

from ledger.cluster_stats import SEEN_WITHIN_SECONDS, clusters_alive


class Command(BaseCommand):
    help = ("For Kubernetes exec probes of a qcluster container: exit 0 if a Django-Q cluster "
            "of this name (Q_CLUSTER_NAME) running on this host was seen within --max-age "
            "seconds, else 1.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=SEEN_WITHIN_SECONDS,
                            help=f"seconds (default {SEEN_WITHIN_SECONDS})")
        parser.add_argument("--any-host", action="store_true",
                            help="accept a cluster on any host")

    def handle(self, *args, max_age: float, any_host: bool, **options):
        host = None if any_host else socket.gethostname()
        alive = clusters_alive(now=timezone.now(), within_seconds=max_age, host=host)
        where = "any host" if any_host else host
        if not alive:
            self.stderr.write(f"no cluster seen on {where} within {max_age:g} s")
            raise SystemExit(1)
        self.stdout.write(", ".join(f"{seen.host}:{seen.pid} {seen.status}" for seen in alive))
