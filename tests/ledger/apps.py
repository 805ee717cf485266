"""Installed only in cluster subprocesses (DISPATCH_TEST_JOBS=1, see test_settings)."""

from django.apps import AppConfig


class LedgerTestJobsConfig(AppConfig):
    name = "tests.ledger"
    label = "ledger_test_jobs"
    verbose_name = "Ledger test jobs"

    def ready(self) -> None:
        from tests.ledger.jobs_for_tests import register_test_jobs

        register_test_jobs()
