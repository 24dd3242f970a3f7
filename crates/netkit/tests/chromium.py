"""Headless Chromium under selenium and Debian's chromedriver, started the
one way every browser test here needs: no network of its own, no sandbox
(CI is root), a profile and the driver's log in the test's directory."""

import os

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1200,900",
]


def start(work, name="browser", extra_flags=(), console=False):
    """A Chrome driver whose profile and log are `work`/profile-NAME and
    `work`/chromedriver-NAME.log; with `console`, the page's console can
    be read through `get_log("browser")`."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*FLAGS, *extra_flags, f"--user-data-dir={os.path.join(work, 'profile-' + name)}"]:
        options.add_argument(flag)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path="/usr/bin/chromedriver",
        log_output=os.path.join(work, f"chromedriver-{name}.log"),
    )
    return webdriver.Chrome(options=options, service=service)
