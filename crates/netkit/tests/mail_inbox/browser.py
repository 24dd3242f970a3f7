"""Drives the web inbox in headless Chromium through selenium and
chromedriver, checking what a person would see. Run inside the test's
network namespace: the sink, the browser and a "remote" web server of our
own (to catch any load the page should not make) share its loopback.

usage: browser.py SMTP_HOST SMTP_PORT INBOX_URL WORK_DIR SCENARIO
SCENARIO: live (list, search, inline and remote images, delete) or hostile.
On failure a screenshot and the page source are saved in WORK_DIR.
"""

import http.server
import os
import subprocess
import sys
import threading
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import chromium  # noqa: E402  (the tests' shared start-up)

HERE = os.path.dirname(os.path.abspath(__file__))
SMTP_HOST, SMTP_PORT, INBOX, WORK, SCENARIO = sys.argv[1:6]
INBOX = INBOX.rstrip("/")
WAIT = 30


class Remote(http.server.BaseHTTPRequestHandler):
    """A stand-in for the sender's tracking server: records every request."""

    requests = []

    def do_GET(self):
        Remote.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_remote():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Remote)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def send(kind, remote):
    subprocess.run(
        [sys.executable, os.path.join(HERE, "smtplib_send.py"), SMTP_HOST, SMTP_PORT, kind, remote],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def browser():
    # Keeps the sandboxed frame in the page's renderer so chromedriver sees
    # its console (what CSP and the sandbox refused); the sandbox flags and
    # the policy are enforced the same either way.
    return chromium.start(WORK, extra_flags=["--disable-features=IsolateSandboxedIframes"], console=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def console(driver, seen):
    """Console messages so far (the log is drained as it is read)."""
    seen.extend(entry["message"] for entry in driver.get_log("browser"))
    return seen


def wait_console(driver, seen, needle):
    WebDriverWait(driver, WAIT).until(
        lambda d: any(needle in line for line in console(d, seen)),
        f"no console message containing {needle!r}",
    )


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#messages tbody tr")


def open_list(driver):
    driver.get(INBOX + "/")
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "messages").get_attribute("data-connected") == "1",
        "the list never connected to the event stream",
    )


def live(driver, remote):
    open_list(driver)
    check(len(rows(driver)) == 0, "the inbox starts empty")

    send("rich", remote + "pixel.png")
    sent = time.monotonic()
    WebDriverWait(driver, 1, poll_frequency=0.02).until(
        lambda d: len(rows(d)) == 1, "the list did not show the message within 1 s of the send"
    )
    print(f"ok: the list showed the message {time.monotonic() - sent:.3f} s after the send")
    check("Quarterly report with a logo" in rows(driver)[0].text, rows(driver)[0].text)
    check(rows(driver)[0].find_elements(By.CLASS_NAME, "attachment"), "attachment marker")
    send("text", remote)
    WebDriverWait(driver, 1, poll_frequency=0.02).until(lambda d: len(rows(d)) == 2, "second message")
    check("Grüße aus Köln" in rows(driver)[0].text, "newest first: " + rows(driver)[0].text)
    check("2 messages, 2 unread" in driver.find_element(By.ID, "counts").text, "counts")

    box = driver.find_element(By.ID, "q")
    box.send_keys("from:carol")
    box.submit()
    WebDriverWait(driver, WAIT).until(lambda d: "q=from" in d.current_url)
    check(len(rows(driver)) == 1, f"search narrows to one: {len(rows(driver))}")
    check("Quarterly report" in rows(driver)[0].text, rows(driver)[0].text)
    print("ok: search narrowed the list")

    rows(driver)[0].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(driver, WAIT).until(lambda d: "/message/" in d.current_url)
    message_url = driver.current_url
    check(driver.find_element(By.ID, "subject").text == "Quarterly report with a logo", "subject heading")
    names = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "ul.attachments a")]
    check(names == ["report.pdf", "données.csv", "logo.png"], f"attachments listed: {names}")
    frame = driver.find_element(By.ID, "message-html")
    check(frame.get_attribute("sandbox") == "", "the frame is sandboxed with no permissions")
    seen = []
    driver.switch_to.frame(frame)
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "logo").get_property("complete"), "the inline image loads"
    )
    logo = driver.find_element(By.ID, "logo")
    check(logo.get_property("naturalWidth") == 1, "the inline cid: image is shown in place")
    check(driver.find_element(By.ID, "title").text == "Quarterly report", "the HTML renders")
    driver.switch_to.default_content()
    print("ok: the HTML view shows the inline image")

    wait_console(driver, seen, remote + "pixel.png")
    check(not Remote.requests, f"remote requests: {Remote.requests}")
    print("ok: the remote image was blocked by the policy, and never requested")

    driver.find_element(By.ID, "show-remote").click()
    WebDriverWait(driver, WAIT).until(
        lambda d: "/pixel.png" in Remote.requests, "the remote image loads once asked for"
    )
    print("ok: remote images load when the reader asks")

    driver.get(message_url)
    driver.find_element(By.CSS_SELECTOR, "form[action$='/delete'] button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.current_url.rstrip("/") == INBOX)
    check(len(rows(driver)) == 1, "one message left after the delete")
    check("Quarterly report" not in driver.find_element(By.ID, "messages").text, "the deleted one is gone")
    print("ok: delete removed the message")

    driver.find_element(By.CSS_SELECTOR, "form.delete-all button").click()
    WebDriverWait(driver, WAIT).until(lambda d: len(rows(d)) == 0, "delete all")
    print("ok: delete all emptied the list")


def hostile(driver, remote):
    open_list(driver)
    send("hostile", remote)
    WebDriverWait(driver, WAIT).until(lambda d: len(rows(d)) == 1, "the hostile message is listed")
    row = rows(driver)[0]
    check("<script>" in row.text, f"the subject shows as text: {row.text}")
    check("<mallory@attacker.example>" in row.text, f"the real address is shown: {row.text}")
    row.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(driver, WAIT).until(lambda d: "/message/" in d.current_url)
    url = driver.current_url
    seen = []
    frame = driver.find_element(By.ID, "message-html")
    for needle in [
        "Refused to execute the redirect",
        "Blocked script execution",
        remote + "tracker.png",
        remote + "import.css",
        remote + "link.css",
        remote + "background.png",
        remote + "exfiltrate-a",
        remote + "font.woff",
    ]:
        wait_console(driver, seen, needle)
    driver.switch_to.frame(frame)
    check(driver.find_element(By.ID, "text").text == "Hostile content", "the frame shows the message")
    check(driver.execute_script("return document.title") == "", "the message's script did not run")
    # A javascript: link is refused without a word in the console; the
    # form's refusal, logged after it, shows the click has been handled.
    driver.find_element(By.ID, "js-link").click()
    driver.find_element(By.ID, "submit").click()
    wait_console(driver, seen, "allow-forms")
    check(driver.find_element(By.ID, "text").text == "Hostile content", "the frame still shows the message")
    driver.switch_to.default_content()

    check(driver.current_url == url, f"the page did not navigate: {driver.current_url}")
    subject_text = "<script>parent.document.title='pwned'</script> urgent"
    check(driver.title == subject_text + " · netkit inbox", driver.title)
    check(driver.find_element(By.TAG_NAME, "h1").text == "netkit inbox", "the page is intact")
    check(driver.find_element(By.TAG_NAME, "body").text != "pwned", "the page is intact")
    subject = driver.find_element(By.ID, "subject").text
    check(subject.startswith("<script>"), f"subject as text: {subject}")
    sender = driver.find_element(By.CSS_SELECTOR, "dl.envelope dd").text
    check(sender == 'security@bank.example <b>verified</b> <mallory@attacker.example>', sender)
    scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
    check(scripts == [INBOX + "/static/inbox.js"], f"only the inbox's own script: {scripts}")
    check(not Remote.requests, f"the hostile message made requests: {Remote.requests}")
    driver.switch_to.frame(frame)
    check(driver.find_element(By.ID, "text").text == "Hostile content", "the frame still shows the message")
    driver.switch_to.default_content()
    print("ok: nothing ran, nothing loaded, the page is intact:")
    for line in seen:
        if "Refused" in line or "Blocked" in line:
            print("   ", line[:200])


def main():
    remote = start_remote()
    driver = browser()
    try:
        {"live": live, "hostile": hostile}[SCENARIO](driver, remote)
    except Exception:
        shot = os.path.join(WORK, f"failure-{SCENARIO}.png")
        driver.save_screenshot(shot)
        with open(os.path.join(WORK, f"failure-{SCENARIO}.html"), "w") as page:
            page.write(driver.page_source)
        print(f"screenshot: {shot}", file=sys.stderr)
        raise
    finally:
        driver.quit()


main()
