"""Drives the chat's browser client in headless Chromium through selenium
and chromedriver: two browser users and one terminal user (`netkit chat
join`) in one room, checking what each of them sees. Run inside the test's
network namespace, where the server listens on loopback.

usage: browser.py NETKIT CHAT_ADDR WEB_URL WORK_DIR
On failure screenshots and page sources are saved in WORK_DIR.
"""

import os
import queue
import subprocess
import sys
import threading
import time

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import chromium  # noqa: E402  (the tests' shared start-up)

NETKIT, CHAT_ADDR, WEB_URL, WORK = sys.argv[1:5]
WAIT = 30


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def browser(name):
    return chromium.start(WORK, name, console=True)


class Page:
    """One person using the browser client."""

    def __init__(self, name, password):
        self.name = name
        self.password = password
        self.driver = browser(name)

    def wait(self, condition, what):
        # The page redraws its lists as events arrive, so an element read
        # in one poll may be gone by the next call: that poll just retries.
        WebDriverWait(
            self.driver, WAIT, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
        ).until(
            lambda d: condition(), f"{self.name}: {what}"
        )

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def status(self):
        return self.find("#status").text

    def sign_in(self, button):
        self.driver.get(WEB_URL)
        self.wait(lambda: self.find("#login-form").is_displayed(), "the login form shows")
        self.find("#name").send_keys(self.name)
        self.find("#password").send_keys(self.password)
        self.find(button).click()
        self.wait(lambda: self.find("#chat").is_displayed(), f"logged in (status: {self.status()})")

    def join(self, room):
        self.find("#join-room").send_keys(room)
        self.find("#join").click()
        self.wait(lambda: self.find("#room-name").text == room, f"{room} is shown")

    def say(self, text):
        self.find("#say").send_keys(text)
        self.find("#send").click()

    def lines(self, room):
        """The visible room's log, as `from: text` lines (history marked)."""
        out = []
        for li in self.all(f"#log li[data-room='{room.lower()}']"):
            classes = li.get_attribute("class").split()
            if "message" in classes:
                line = li.find_element(By.CSS_SELECTOR, ".from").text + ": " + li.find_element(By.CSS_SELECTOR, ".text").text
                out.append(("history " if "history" in classes else "") + line)
            else:
                out.append("* " + li.text)
        return out

    def sees(self, room, line):
        self.wait(lambda: line in self.lines(room), f"no {line!r} in {room}: {self.lines(room)}")

    def people(self):
        return [span.text for span in self.all("#users li > span")]

    def save(self):
        self.driver.save_screenshot(os.path.join(WORK, f"{self.name}.png"))
        with open(os.path.join(WORK, f"{self.name}.html"), "w") as page:
            page.write(self.driver.page_source)

    def quit(self):
        self.driver.quit()


class Terminal:
    """One person using `netkit chat join`, its lines read as they come."""

    def __init__(self, name, password):
        env = dict(os.environ, NETKIT_CHAT_PASSWORD=password, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [NETKIT, "chat", "join", "--server", CHAT_ADDR, "--user", name, "--register"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.name = name
        self.seen = []
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, needle):
        deadline = time.monotonic() + WAIT
        while True:
            for line in self.seen:
                if needle in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no line with {needle!r}; saw {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=left))
            except queue.Empty:
                pass

    def quit(self):
        self.send("#quit")
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()


def scenario(alice, bob, carol):
    alice.sign_in("#register")
    check("logged in as alice (new account)" in alice.status(), alice.status())
    bob.sign_in("#register")
    carol.expect("* connected to")
    print("ok: two browser users registered, a terminal user too")

    # Everyone is in the default room and on its user list.
    alice.wait(lambda: alice.people() == ["alice", "bob", "carol"], f"user list: {alice.people()}")
    carol.send("hello from the terminal")
    alice.sees("#lobby", "carol: hello from the terminal")
    bob.sees("#lobby", "carol: hello from the terminal")
    alice.say("hello from a browser")
    carol.expect("[room] alice: hello from a browser")
    bob.sees("#lobby", "alice: hello from a browser")
    print("ok: the default room carries messages between browsers and the terminal")

    # A named room: what alice says before the others join is history to them.
    alice.join("#web")
    alice.say("said before anyone came")
    alice.say("and a second thing")
    alice.wait(
        lambda: "alice: and a second thing" in alice.lines("#web"), "alice sees her own messages"
    )
    bob.join("#web")
    bob.sees("#web", "history alice: said before anyone came")
    bob.sees("#web", "history alice: and a second thing")
    carol.send("#join #web")
    carol.expect("alice: said before anyone came")
    carol.expect("alice: and a second thing")
    print("ok: history on join, in the browser and on the terminal")

    alice.wait(lambda: alice.people() == ["alice", "bob", "carol"], f"#web members: {alice.people()}")
    carol.send("terminal in #web")
    alice.sees("#web", "carol: terminal in #web")
    bob.sees("#web", "carol: terminal in #web")
    bob.say("bob in #web")
    alice.sees("#web", "bob: bob in #web")
    carol.expect("[#web] bob: bob in #web")
    check(
        "carol: terminal in #web" not in alice.lines("#lobby"),
        f"room messages stay in their room: {alice.lines('#lobby')}",
    )
    print("ok: the named room carries messages between browsers and the terminal")

    # Text is shown as text.
    carol.send("<img src=x onerror=alert(1)> <b>bold</b>")
    alice.sees("#web", "carol: <img src=x onerror=alert(1)> <b>bold</b>")
    check(not alice.all("#log img") and not alice.all("#log .text b"), "markup is not rendered")
    print("ok: markup in messages is shown as text")

    # The topic, set by the room's operator, reaches everyone.
    alice.find("#topic-text").send_keys("browsers welcome")
    alice.find("#set-topic").click()
    bob.wait(lambda: "browsers welcome" in bob.find("#topic").text, "bob sees the topic")
    carol.expect("set the topic of #web: browsers welcome")
    print("ok: the operator's topic reaches browsers and the terminal")

    # bob leaves the room and comes back; the others see both.
    bob.find("#part").click()
    bob.wait(lambda: not bob.all("#rooms button[data-room='#web']"), "bob's room list drops #web")
    alice.sees("#web", "* bob left (parted)")
    carol.expect("bob left #web (parted)")
    bob.join("#web")
    alice.sees("#web", "* bob joined")
    print("ok: leaving a room is seen by the browser and the terminal")

    # The operator kicks bob from the room's member list.
    alice.wait(lambda: alice.all("#users button.kick[data-user='bob']"), "a kick button for bob")
    alice.find("#users button.kick[data-user='bob']").click()
    bob.sees("#lobby", "* alice kicked you from #web")
    bob.wait(lambda: not bob.all("#rooms button[data-room='#web']"), "bob's room list drops #web")
    alice.sees("#web", "* alice kicked bob from #web")
    alice.sees("#web", "* bob left (kicked)")
    carol.expect("* alice kicked bob from #web")
    check(not carol.process.poll(), "carol is still connected")
    print("ok: a kick in the browser is seen by the kicked browser, the operator and the terminal")

    # Direct messages: relayed by the server, signed end to end.
    carol.send("@alice: psst from the terminal")
    alice.wait(lambda: alice.all("#rooms button[data-room='@carol']"), "a conversation with carol opens")
    alice.find("#rooms button[data-room='@carol']").click()
    alice.sees("@carol", "carol: psst from the terminal")
    check(
        alice.all("#log li.direct[data-room='@carol']"), "the direct message is marked as one"
    )
    alice.say("psst back from the browser")
    carol.expect("[direct relayed] alice: psst back from the browser")
    alice.find("#rooms button[data-room='#lobby']").click()
    alice.find("#users button.message[data-user='bob']").click()
    alice.wait(lambda: alice.find("#room-name").text == "@bob", "the conversation with bob shows")
    alice.say("browser to browser")
    bob.wait(lambda: bob.all("#rooms button[data-room='@alice']"), "a conversation with alice opens")
    bob.find("#rooms button[data-room='@alice']").click()
    bob.sees("@alice", "alice: browser to browser")
    check(
        "alice: browser to browser" not in carol.seen and not any("browser to browser" in line for line in carol.seen),
        "a direct message reaches only its recipient",
    )
    print("ok: direct messages between browsers and the terminal, relayed and verified")


def main():
    alice = Page("alice", "alice's password")
    bob = Page("bob", "bob's password")
    carol = Terminal("carol", "carol's password")
    try:
        scenario(alice, bob, carol)
    except Exception:
        for page in (alice, bob):
            page.save()
        print("carol saw:", *carol.seen, sep="\n  ", file=sys.stderr)
        raise
    finally:
        carol.quit()
        alice.quit()
        bob.quit()


if __name__ == "__main__":
    main()
