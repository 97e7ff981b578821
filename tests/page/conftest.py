"""The page's tests in a real browser: Debian's Chromium, and browser contexts whose every page records what went
wrong in it."""

import pytest

from tests.conftest import CHROMIUM

DESKTOP = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright, for a module's tests: each opens contexts of its own in it, which share
    nothing. Module-scoped, not session-scoped: Playwright's sync API holds the thread's event loop while it runs, so
    a later module's asyncio.run (tests/page/test_follow.py, tests/ways_in/test_room_limits.py) could not start."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def watched(context) -> list[str]:
    """The console errors and uncaught exceptions of every page of a browser context, as they come."""
    errors = []
    context.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    context.on("weberror", lambda error: errors.append(str(error.error)))
    return errors


def new_page(browser, viewport: dict | None = None, **options):
    """A page in a browser context of its own (`options` as new_context takes them), its errors in `page.errors`:
    for tests of several people at once (a presenter and followers), each with a screen of their own."""
    context = browser.new_context(viewport=viewport or DESKTOP, **options)
    page = context.new_page()
    page.errors = watched(context)
    return page


@pytest.fixture
def context(browser):
    """A browser context of the test's own that fails the test on any of its pages' errors."""
    context = browser.new_context(viewport=DESKTOP)
    errors = watched(context)
    yield context
    context.close()
    assert not errors, f"console errors: {errors}"


@pytest.fixture
def page(context):
    """A fresh page that fails the test on a console error or an uncaught exception."""
    return context.new_page()
