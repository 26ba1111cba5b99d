"""Headless Chromium from Debian, driven by Selenium through Debian's chromedriver: no browser download.

The person at the Airflow UI is played by :class:`UiUser`: it signs in on the auth manager's login form, opens
a task's Required Action tab, reads what is shown, and clicks the buttons a person would click.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1600) -> Iterator[Any]:
    """A headless Chromium session; fails with the fix named when Debian's packages are missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists() and shutil.which(Path(binary).name) is None:
            raise RuntimeError(f"{binary} is missing: run `dev/debs.sh` (make test does) to install chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class UiUser:
    """A person at the Airflow UI of ``base_url``."""

    def __init__(self, driver: Any, base_url: str, screenshots: Path) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.screenshots = screenshots
        screenshots.mkdir(parents=True, exist_ok=True)

    def wait(self, condition: Any, timeout: float = 60) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def sign_in(self, username: str, password: str) -> None:
        """Open the UI, which sends an anonymous visitor to the auth manager's login form, and sign in there."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(self.base_url + "/")
        self.wait(ec.presence_of_element_located((By.NAME, "username"))).send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda driver: "/auth/login" not in driver.current_url)

    def open_required_actions(self) -> None:
        """Browse > Required Actions: the list of everything waiting for a person."""
        self.driver.get(self.base_url + "/required_actions")

    def open_required_action(self, subject_part: str) -> str:
        """Click the waiting action whose subject contains ``subject_part``; return the page's text."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.open_required_actions()
        self.wait(ec.element_to_be_clickable((By.PARTIAL_LINK_TEXT, subject_part))).click()
        self.wait(
            lambda driver: "/required_actions" in driver.current_url and "/tasks/" in driver.current_url
        )
        return self.wait_text("Diff")

    def wait_text(self, needle: str, timeout: float = 60) -> str:
        """Wait until ``needle`` is shown on the page; return the page's visible text."""
        from selenium.webdriver.common.by import By

        deadline = time.monotonic() + timeout
        while True:
            text = str(self.driver.find_element(By.TAG_NAME, "body").text)
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{needle!r} not shown after {timeout:.0f}s; the page shows:\n{text[-3000:]}"
                )
            time.sleep(0.5)

    def click_button(self, label: str) -> None:
        """Click the button labelled ``label`` (e.g. ``Approve``), scrolled into view first."""
        from selenium.webdriver.common.by import By

        buttons = [
            button for button in self.driver.find_elements(By.TAG_NAME, "button") if button.text == label
        ]
        if not buttons:
            raise AssertionError(f"no {label!r} button on {self.driver.current_url}")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", buttons[0])
        time.sleep(0.5)
        buttons[0].click()

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def screenshot_full(self, name: str) -> Path:
        """The whole page, not just the window: the window is grown to the document's height first."""
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        width = int(self.driver.execute_script("return window.innerWidth"))
        self.driver.set_window_size(width, min(max(height, 900), 6000))
        return self.screenshot(name)
