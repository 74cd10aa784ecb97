"""The operator console in a real headless Chromium, against a running `herald api` and worker.

Environment: HERALD_BASE_URL, OPERATOR_TOKEN, TENANT_NAME (a tenant with attempts in its
log), HOSTILE_TENANT_NAME (a tenant named with HTML), SCREENSHOTS (a folder). Two parked
messages wait in the parking queue and an endpoint was disabled by its tenant. Prints one
line per step; any failed check raises, so the exit status tells.
"""

import os

from selenium.webdriver.common.by import By

import browser_support
from browser_support import BASE, SHOTS, browser, go, text, wait_for

TOKEN = os.environ["OPERATOR_TOKEN"]
TENANT = os.environ["TENANT_NAME"]
HOSTILE = os.environ["HOSTILE_TENANT_NAME"]


def step(words):
    print("console:", words, flush=True)


def post(path, fields, cookie):
    return browser_support.post(path, fields, "herald_console", cookie)


def sign_in(c, token):
    c.get(BASE + "/console")
    c.find_element(By.ID, "token").send_keys(token)
    go(c, c.find_element(By.ID, "sign-in"))


def row(c, table, words):
    """The text of the first row of `table` that contains `words`."""
    for tr in c.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
        if words in tr.text:
            return tr.text
    raise AssertionError(f"no row with {words!r} in #{table}: {text(c)[:600]}")


c = browser()
step("the console asks for the operator token and refuses another")
c.get(BASE + "/console")
assert c.find_elements(By.ID, "token") and not c.find_elements(By.CSS_SELECTOR, "nav a")
sign_in(c, "not-the-token")
assert "not the operator token" in c.find_element(By.ID, "token-error").text
assert not c.get_cookie("herald_console")

step("signed in, it lists the tenants with their endpoints and recent failures")
sign_in(c, TOKEN)
cookie = c.get_cookie("herald_console")
assert cookie and cookie["httpOnly"] and cookie["value"] not in c.current_url and TOKEN not in c.current_url
wait_for(c, lambda d: " 0 0 " not in row(d, "tenants", TENANT).replace("\n", " "), "the tenant's attempts to be counted")
assert HOSTILE in text(c), "the tenant named with HTML shows as text"
assert "<script>alert" not in c.page_source
c.save_screenshot(os.path.join(SHOTS, "console-tenants.png"))

step("disabled endpoints across tenants, with why")
disabled = c.find_element(By.ID, "disabled-endpoints").text
assert "disabled by the tenant" in disabled, disabled

step("endpoints whose circuit is open, across tenants")
circuits = c.find_element(By.ID, "open-circuits").text
assert "/tripped" in circuits and "/in" not in circuits, circuits

step("the queues with depth and consumers, and the parked messages")
c.get(BASE + "/console/queues")
assert len(c.find_elements(By.CSS_SELECTOR, "#queues tbody tr")) == 6, "work, three rungs, defer, parking"
work = c.find_element(By.CSS_SELECTOR, "#queues tr[data-role=work]").text.split()
assert int(work[-1]) >= 1, f"the worker consumes the work queue: {work}"
wait_for(c, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#parked-messages tbody tr")) == 2, "two parked messages")
assert "no tenant" in c.find_element(By.ID, "parked-messages").text
c.save_screenshot(os.path.join(SHOTS, "console-queues.png"))
go(c, c.find_element(By.CSS_SELECTOR, "#parked-messages button.discard"))
assert "discarded" in text(c), text(c)
assert len(c.find_elements(By.CSS_SELECTOR, "#parked-messages tbody tr")) == 1
go(c, c.find_element(By.CSS_SELECTOR, "#parked-messages button.replay"))
assert "back in the work queue" in text(c), text(c)
assert post("/console/parked/discard", {"id": "x"}, cookie["value"]) == 403, "a form without the session's token"

step("the worker replicas from their heartbeats")
c.get(BASE + "/console/workers")
assert "consuming" in c.find_element(By.ID, "workers").text, text(c)
c.save_screenshot(os.path.join(SHOTS, "console-workers.png"))

step("the operator opens a tenant's portal, read-only")
c.get(BASE + "/console")
for tr in c.find_elements(By.CSS_SELECTOR, "#tenants tbody tr"):
    if TENANT in tr.text:
        go(c, tr.find_element(By.CSS_SELECTOR, "button"))
        break
assert c.current_url.endswith("/portal/endpoints") and "read-only" in text(c), c.current_url

step("signing out ends the session; a tampered cookie is a fresh sign-in")
c.get(BASE + "/console")
go(c, c.find_element(By.ID, "sign-out"))
c.get(BASE + "/console/queues")
assert c.find_elements(By.ID, "token")
assert post("/console/parked/discard", {"id": "x", "csrf": "0" * 32}, cookie["value"]) == 401
c.add_cookie({"name": "herald_console", "value": "f" * 64, "path": "/console"})
c.get(BASE + "/console/workers")
assert c.find_elements(By.ID, "token")
print("console: all steps passed", flush=True)
