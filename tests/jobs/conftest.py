from tests.webhooks.conftest import workspace  # noqa: F401  (the fixtures' Client)
