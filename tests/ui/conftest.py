"""Browser tests: a real api-server + scheduler + dag-processor (tests/ui/stack.py) driven by
Playwright on Debian's chromium (scripts/bootstrap.sh installs it as root; Playwright's own
browser download is not used). Screenshots go to .local/test-artifacts/ui/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.ui.stack import Stack

CHROMIUM = Path(os.environ.get("LAKEHOUSE_CHROMIUM", "/usr/lib/chromium/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / ".local" / "test-artifacts" / "ui"
PIPELINE_DAGS = ("lakehouse_smoke", "restore_table", "observe_lakehouse")


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: run 'sudo apt-get install -y chromium' (make installs it when run as root)"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must run the browser suite, never skip it
    pytest.skip(message)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stack with lakehouse_smoke run once (bronze -> gold, with lineage events)."""
    _require_browser()
    stack = Stack(tmp_path_factory.mktemp("ui"))
    try:
        stack.start()
        stack.wait(lambda: all(stack.dag_registered(d) for d in PIPELINE_DAGS), "the DAGs to be parsed", 300)
        for dag_id in PIPELINE_DAGS:
            stack.unpause(dag_id)
        stack.smoke_run = stack.trigger("lakehouse_smoke")
        stack.wait_run("lakehouse_smoke", stack.smoke_run)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser(stack):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a busy machine renders slowly; failures still fail
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, stack, request):
    """A page logged in through the login form as admin; a screenshot of where it ended."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(stack.url)
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))
    yield page
    shot(page, f"{request.node.name}-end")
    context.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
