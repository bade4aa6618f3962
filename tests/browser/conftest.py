"""A real headless Chromium for the sandbox page's tests, started once per session.

Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``SIGNOFF_CHROMIUM`` / ``SIGNOFF_CHROMEDRIVER`` point elsewhere)
driven through Selenium; nothing is downloaded at test time. Without them the tests skip with
the command that installs them; in CI (``CI`` set) they fail instead, since ``.ci/run``
installs them. Screenshots go to ``build/browser/`` (``SIGNOFF_ARTIFACTS`` overrides).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.bot.sandbox.web import SandboxPage
from signoff.bot.testing import RunningBot, running_bot

ROOT = Path(__file__).resolve().parents[2]
#: Flags that keep Chromium off the network and quiet in a container.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
)
INSTALL = "apt-get install chromium chromium-driver"


def _binary(env: str, default: str) -> str | None:
    path = os.environ.get(env) or default
    return path if shutil.which(path) else None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium (a Selenium WebDriver) for the whole session."""
    chromium = _binary("SIGNOFF_CHROMIUM", "/usr/bin/chromium")
    chromedriver = _binary("SIGNOFF_CHROMEDRIVER", "/usr/bin/chromedriver")
    if chromium is None or chromedriver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        message = f"no {missing} on this machine; install Debian's packages: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="signoff-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


#: read as the tests are collected: each test then runs without SIGNOFF_* variables
ARTIFACTS = Path(os.environ.get("SIGNOFF_ARTIFACTS") or ROOT / "build" / "browser")


def _artifacts_path() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are written (kept after the run, for people and CI to look at)."""
    return _artifacts_path()


@pytest.fixture
def demo_bot(tmp_path: Path) -> Iterator[RunningBot]:
    """The bot with the demo flows (and one using every input), served against a fresh sandbox."""
    flows = ["signoff.bot.demo.flows", str(Path(__file__).with_name("everything_flows.py"))]
    with running_bot(flows, database_url=f"sqlite:///{tmp_path}/t.db") as bot:
        yield bot


@pytest.fixture
def page(demo_bot: RunningBot) -> Iterator[SandboxPage]:
    """The sandbox page for ``demo_bot``, on a free loopback port."""
    served = SandboxPage(
        demo_bot.slack.workspace, demo_bot.driver, flows=demo_bot.engine.flows.names()
    )
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """What the browser showed when a test failed, with its window's size, for people to
    look at (a failure in CI is otherwise only a selector and a point). Taken here, while
    the test's page still serves."""
    report = yield
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and browser is not None:
        artifacts = item.funcargs.get("artifacts") or _artifacts_path()
        name = f"failed-{item.name}"
        browser.get_screenshot_as_file(str(artifacts / f"{name}.png"))
        size = browser.get_window_size()
        (artifacts / f"{name}.html").write_text(
            f"<!-- window {size['width']}x{size['height']} -->\n{browser.page_source}"
        )
    return report
