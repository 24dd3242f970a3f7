"""Drives `netkit web serve --list --upload` in headless Chromium through
selenium and chromedriver, as a person would: sorts the listing by
clicking its column headings, then chooses a file in the listing's form,
submits it, and sees it listed. Run inside the test's network namespace.

usage: upload_browser.py LISTING_URL UPLOAD_FILE WORK_DIR
On failure a screenshot and the page source are saved in WORK_DIR.
"""

import os
import sys

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import chromium  # noqa: E402  (the tests' shared start-up)

LISTING, UPLOAD, WORK = sys.argv[1:4]
WAIT = 30


def browser():
    return chromium.start(WORK)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def names(driver):
    """The file names in the listing, in page order (without ../); None
    while a navigation replaces the page under the lookup."""
    try:
        cells = driver.find_elements(By.CSS_SELECTOR, "tbody tr td:first-child a")
        return [cell.text for cell in cells if cell.text != "../"]
    except StaleElementReferenceException:
        return None


def listed(driver, expected, what):
    """Waits for the listing to show `expected`, in order: a click's
    navigation may still be loading the next page."""
    WebDriverWait(driver, WAIT).until(lambda d: names(d) == expected, f"{what}: {names(driver)}")


def sort_by(driver, heading, query):
    driver.find_element(By.LINK_TEXT, heading).click()
    WebDriverWait(driver, WAIT).until(lambda d: query in d.current_url, f"sorted by {query}")


def run(driver):
    driver.get(LISTING)
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "upload"), "the form")
    listed(driver, ["large.txt", "medium.txt", "small.txt"], "by name")

    sort_by(driver, "Size", "sort=size")
    listed(driver, ["small.txt", "medium.txt", "large.txt"], "by size")
    # The heading of the column sorted ascending now sorts descending.
    sort_by(driver, "Size", "order=desc")
    listed(driver, ["large.txt", "medium.txt", "small.txt"], "size desc")
    sort_by(driver, "Modified (UTC)", "sort=date")
    listed(driver, ["medium.txt", "large.txt", "small.txt"], "by date")
    print("ok: the listing sorts by size and date")

    driver.get(LISTING)
    chooser = driver.find_element(By.ID, "file")
    chooser.send_keys(UPLOAD)
    driver.find_element(By.ID, "send").click()
    name = os.path.basename(UPLOAD)
    WebDriverWait(driver, WAIT).until(lambda d: name in (names(d) or []), f"{name} listed after the upload")
    check(driver.current_url.rstrip("/") == LISTING.rstrip("/"), f"back on the listing: {driver.current_url}")
    driver.find_element(By.LINK_TEXT, name).click()
    WebDriverWait(driver, WAIT).until(lambda d: d.current_url.endswith(name), "the file opens")
    body = driver.find_element(By.TAG_NAME, "body").text
    check("uploaded from chromium" in body, f"the stored file's text: {body!r}")
    print("ok: the chosen file was uploaded, listed and served")


def main():
    driver = browser()
    try:
        run(driver)
    except Exception:
        driver.save_screenshot(os.path.join(WORK, "failure.png"))
        with open(os.path.join(WORK, "page.html"), "w") as page:
            page.write(driver.page_source)
        raise
    finally:
        driver.quit()


main()
