"""Debian's chromium driven by Playwright, as a phone would show a page.

No browser is downloaded (`playwright install` is never run): tests that need one call
require_chromium() at module level and are skipped where /usr/bin/chromium or the
`playwright` package is missing. tests/cloud/web/conftest.py turns chromium() and
phone_page() into the `browser` and `phone` fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path("/tmp")


def require_chromium() -> ModuleType:
    """playwright.sync_api; skips the calling module when there is no browser to drive."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(
            f"no chromium at {CHROMIUM}: apt-get install chromium (Debian's; no browser download)",
            allow_module_level=True,
        )
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@contextmanager
def chromium() -> Iterator[Any]:
    with require_chromium().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def phone_page(browser: Any) -> Iterator[Any]:
    """A fresh phone-sized page; `page.problems` collects its console errors and uncaught
    exceptions, for a test to assert there were none."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    try:
        yield page
    finally:
        context.close()
