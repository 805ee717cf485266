import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ledger.schedules import ledger_schedule_sync


class Command(BaseCommand):
    help = ("Demo set-up for make run: the sweeper schedule, and on the first run only a demo "
            "superuser with a random password, printed once.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username, **options):
        ledger_schedule_sync()  # the sweeper runs every minute in the demo cluster too
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin: log in with the superuser made on the first run "
                              "(manage.py changepassword demo to reset it).")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(
            f"Made the demo superuser (shown once): username={username} password={password}"))
