"""The admin in a real browser (headless Chromium, Debian's ``chromium`` and ``chromium-driver``):
log in, open the status page and a failed run, assert what an on-call engineer must see, and
save screenshots under ``var/artifacts/`` (CI keeps that folder)."""

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from ledger.models import FunctionRun, RunStatus
from tests.conftest import CRON_SECRET

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "var" / "artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WAIT_SECONDS = 15

pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Debian's chromium and chromium-driver (.ci/run installs "
                              "them: apt-get install chromium chromium-driver)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1500,1000", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _failed_run() -> FunctionRun:
    """A dispatched window whose first run failed with an error, over the real route."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}")
    assert client.get("/api/cron/background-jobs").status_code == 202
    run = FunctionRun.objects.order_by("pk").first()
    FunctionRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, reason="error", finished_at=timezone.now(), duration_ms=2345,
        error="ConnectionError: EmailBison answered 502 Bad Gateway\nTraceback (most recent "
              "call last): ...")
    return run


def _wait_for(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_browser__login_status_page_and_a_failed_run(browser, live_server):
    """Log in; the index links the status page; the status page shows the cron, its failed
    last run and its error; the run's page shows the error in full; screenshots saved."""
    from selenium.webdriver.common.by import By

    User.objects.create_superuser("oncall", "oncall@example.com", "a-strong-password-1")
    run = _failed_run()

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    _wait_for(browser, "#id_username").send_keys("oncall")
    browser.find_element(By.ID, "id_password").send_keys("a-strong-password-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    link = _wait_for(browser, "#ops-status-link th a[href='/admin/status/']")
    browser.save_screenshot(str(ARTIFACTS / "admin-index.png"))
    assert "Cron status" in link.text

    link.click()
    row = _wait_for(browser, "#cron-background-jobs")
    browser.save_screenshot(str(ARTIFACTS / "admin-status.png"))
    assert "background-jobs" in row.text and "failed (error)" in row.text
    assert "ConnectionError: EmailBison answered 502 Bad Gateway" in row.text
    assert "1 queued / 0 running" in row.text
    pipeline = browser.find_element(By.ID, "ops-pipeline").text
    assert "Cluster last seen" in pipeline and "Sweeper schedule" in pipeline
    # Styled: the admin's CSS loaded (its header bar is coloured, not the browser's default).
    header = browser.find_element(By.ID, "header")
    assert header.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "")

    row.find_element(By.CSS_SELECTOR, f"a[href='/admin/ledger/functionrun/{run.pk}/change/']").click()
    _wait_for(browser, "#functionrun_form, .readonly")
    browser.save_screenshot(str(ARTIFACTS / "admin-run.png"))
    outcome = browser.find_element(By.CSS_SELECTOR, "fieldset").text  # the first: Outcome
    assert "failed" in outcome and "EmailBison answered 502 Bad Gateway" in outcome
    assert "2.3 s" in outcome and "0/2" in outcome  # process-background-jobs: 1 retry
    assert "UTC" in browser.find_element(By.ID, "content").text
    for name in ("admin-index.png", "admin-status.png", "admin-run.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
