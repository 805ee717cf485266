import os

from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.demo import DEFAULT_PROVIDER_BASE_URL, demo_seed


class Command(BaseCommand):
    help = ("Fill the database with demo clients, campaigns, leads, messages and follow-up "
            "sequences so every cron has work to show. Idempotent: a second run adds nothing.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--provider-base-url",
            default=os.environ.get("DEMO_PROVIDER_BASE_URL", DEFAULT_PROVIDER_BASE_URL),
            help="base URL of the EmailBison, availability and booking APIs the demo clients "
                 "use (default: $DEMO_PROVIDER_BASE_URL or %(default)s)")

    def handle(self, *args, provider_base_url, **options):
        made = demo_seed(now=timezone.now(), provider_base_url=provider_base_url)
        summary = ", ".join(f"{count} {kind}" for kind, count in made.items())
        if any(made.values()):
            self.stdout.write(self.style.SUCCESS(f"Demo data added: {summary}."))
        else:
            self.stdout.write("Demo data already present: nothing added.")
