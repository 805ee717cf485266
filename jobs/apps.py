from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs and outreach data"

    def ready(self) -> None:
        from jobs import registration

        registration.register_all()
