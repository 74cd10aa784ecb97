"""The tenant portal in a real headless Chromium, against a running `herald api` and worker.

Environment: HERALD_BASE_URL, PORTAL_LINK_A, PORTAL_LINK_A2, PORTAL_LINK_A_READ_ONLY,
PORTAL_LINK_B (paths from POST /v1/tenants/{id}/portal-links), TENANT_A_KEY (to publish an
event), HERALD_RECEIVER_URL (a receiver answering 200), HERALD_FLAKY_URL (one answering 503
with HTML in its body until HERALD_HEAL_URL is posted to), SCREENSHOTS (a folder). Prints
one line per step; any failed check raises, so the exit status tells.
"""

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import browser_support
from browser_support import BASE, SHOTS, browser, go, text, wait_for

RECEIVER = os.environ["HERALD_RECEIVER_URL"]
FLAKY = os.environ["HERALD_FLAKY_URL"]


def step(text):
    print("portal:", text, flush=True)


def session_cookie(driver):
    cookie = driver.get_cookie("herald_portal")
    assert cookie and cookie["httpOnly"], cookie
    return cookie["value"]


def post(path, fields, cookie):
    return browser_support.post(path, fields, "herald_portal", cookie)


def call(method, path, body=None, token=None, base=BASE):
    """A JSON call outside the browser; returns the status."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def badge(driver):
    return driver.find_element(By.CSS_SELECTOR, "main .badge").text


def tenant_a(a):
    """Tenant A's whole journey; returns the paths of its endpoint and delivery."""
    step("a link opens the portal once")
    a.get(BASE + os.environ["PORTAL_LINK_A"])
    assert a.current_url.endswith("/portal/endpoints"), a.current_url
    assert "No endpoints yet" in text(a)
    cookie_a = session_cookie(a)
    a.get(BASE + os.environ["PORTAL_LINK_A"])
    assert "This link cannot be used" in text(a), text(a)

    step("the form shows errors next to the field and keeps what was typed")
    a.get(BASE + "/portal/endpoints/new")
    a.find_element(By.ID, "description").send_keys("CRM <script>alert(1)</script> hook")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "Enter the URL" in a.find_element(By.ID, "url-error").text
    assert "Choose at least one event" in a.find_element(By.ID, "event_types-error").text
    assert a.find_element(By.ID, "description").get_attribute("value") == "CRM <script>alert(1)</script> hook"
    a.find_element(By.ID, "url").send_keys("http://10.0.0.7/hook")
    a.find_element(By.CSS_SELECTOR, "input[name=event_types][value='client.*']").click()
    a.find_element(By.CSS_SELECTOR, "input[name=dpa]").click()
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert a.find_element(By.ID, "url-error").text, "an internal address is refused"
    assert "Name the person" in a.find_element(By.ID, "dpa-error").text
    assert a.find_element(By.CSS_SELECTOR, "input[name=event_types][value='client.*']").is_selected()

    step("an endpoint is created through the form")
    url = a.find_element(By.ID, "url")
    url.clear()
    url.send_keys(RECEIVER)
    a.find_element(By.ID, "dpa_confirmed_by").send_keys("Ada Lovelace")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "The endpoint was saved." in text(a), text(a)
    endpoint_path = urllib.parse.urlparse(a.current_url).path
    endpoint_id = endpoint_path.rsplit("/", 1)[1]
    assert a.find_element(By.CSS_SELECTOR, ".badge").text == "active"
    # Stored HTML is shown as text, never as markup.
    assert "<script>alert(1)</script>" in text(a)
    assert "<script>" not in a.page_source.replace("&lt;script&gt;", "")

    step("a test webhook reaches the receiver and shows in the log")
    Select(a.find_element(By.ID, "event_type")).select_by_value("client.created")
    go(a, a.find_element(By.ID, "send-test"))
    assert "A test event is on its way" in text(a)
    a.get(BASE + "/portal/deliveries")
    wait_for(a, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-status=delivered]"), "the test delivery to be delivered")
    a.save_screenshot(os.path.join(SHOTS, "portal-deliveries.png"))
    go(a, a.find_element(By.CSS_SELECTOR, "tbody a"))
    assert "HTTP 200" in text(a) and "manual" in text(a), text(a)
    assert "client.created" in text(a)
    delivery_path = urllib.parse.urlparse(a.current_url).path

    step("Retry sends it again as a manual attempt")
    go(a, a.find_element(By.ID, "retry"))
    assert "being sent again" in text(a)
    wait_for(a, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.attempt")) == 2, "the second attempt")

    step("the secret is revealed on request, and a forged form changes nothing")
    a.get(BASE + endpoint_path)
    go(a, a.find_element(By.ID, "reveal-secret"))
    assert a.find_element(By.ID, "secret").text.startswith("whsec_")
    assert post(endpoint_path + "/disable", {"csrf": "0" * 32}, cookie_a) == 403
    assert post(endpoint_path + "/disable", {}, cookie_a) == 403
    a.get(BASE + endpoint_path)
    assert a.find_element(By.CSS_SELECTOR, ".badge").text == "active"

    step("Disable and Activate")
    go(a, a.find_element(By.ID, "disable"))
    assert a.find_element(By.CSS_SELECTOR, ".badge").text == "disabled"
    go(a, a.find_element(By.ID, "activate"))
    assert "active again" in text(a) and a.find_element(By.CSS_SELECTOR, ".badge").text == "active"

    step("the endpoint's charts and help page")
    a.get(BASE + endpoint_path)
    wait_for(a, lambda d: not d.find_element(By.ID, "totals").text.startswith("0 attempts"), "the attempts to be counted")
    assert a.find_elements(By.CSS_SELECTOR, "#figures svg g.bar"), "a bar for the hour of the attempts"
    assert "answered 2xx" in a.find_element(By.ID, "totals").text
    a.save_screenshot(os.path.join(SHOTS, "portal-endpoint.png"))
    a.get(BASE + endpoint_path + "/help")
    assert "X-Herald-Signature" in text(a) and "webhook-id" in text(a)
    assert "def verify_standard" in a.find_element(By.ID, "snippet-python").get_attribute("textContent")
    assert "hash_equals" in a.find_element(By.ID, "snippet-php").get_attribute("textContent")
    assert len(a.find_elements(By.CSS_SELECTOR, "#retry-table tbody tr")) == 4, "the test deployment's ladder: 3 retries"
    a.save_screenshot(os.path.join(SHOTS, "portal-help.png"))

    step("the edit form keeps what was typed and checks headers and filters")
    a.get(BASE + endpoint_path + "/edit")
    headers = a.find_element(By.ID, "headers")
    headers.send_keys("Content-Type: text/plain")
    a.find_element(By.ID, "filters").send_keys("workspace")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "set by Herald" in a.find_element(By.ID, "headers-error").text
    assert "name: value" in a.find_element(By.ID, "filters-error").text
    assert a.find_element(By.ID, "headers").get_attribute("value") == "Content-Type: text/plain"
    a.find_element(By.ID, "headers").clear()
    a.find_element(By.ID, "headers").send_keys("X-Note: <b>bold</b>")
    a.find_element(By.ID, "filters").clear()
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "The changes were saved." in text(a), text(a)
    assert "X-Note: <b>bold</b>" in text(a) and "<b>bold" not in a.page_source

    a.get(BASE + "/portal/endpoints")
    assert "100 % of" in text(a), text(a)
    a.save_screenshot(os.path.join(SHOTS, "portal-endpoints.png"))
    return endpoint_path, delivery_path


def profiles(a, endpoint_path):
    """A signature profile, a renamed envelope and a payload filter chosen in the form; a rotation confirmed."""
    step("the form checks a signature profile and a payload filter beside their fields")
    a.get(BASE + endpoint_path + "/edit")
    Select(a.find_element(By.ID, "signature_profile")).select_by_value("body-hmac")
    a.find_element(By.ID, "payload_filter").send_keys('{"total": {"$gte2": 1}}')
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "signature.header: is required" in a.find_element(By.ID, "signature-error").text
    assert "'$gte2' is not an operator" in a.find_element(By.ID, "payload_filter-error").text
    assert Select(a.find_element(By.ID, "signature_profile")).first_selected_option.get_attribute("value") == "body-hmac"
    assert a.find_element(By.ID, "payload_filter").get_attribute("value") == '{"total": {"$gte2": 1}}'

    step("Creative Force's signature and a renamed envelope are saved and shown")
    a.find_element(By.ID, "signature_header").send_keys("X-CF-Signature")
    a.find_element(By.ID, "signature_event_header").send_keys("X-CF-Event")
    Select(a.find_element(By.ID, "payload_format")).select_by_value("envelope")
    a.find_element(By.ID, "field_type").send_keys("event_type")
    a.find_element(By.ID, "payload_filter").clear()
    a.find_element(By.ID, "payload_filter").send_keys('{"email": {"$exists": true}}')
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "The changes were saved." in text(a), text(a)
    assert "body-hmac" in a.find_element(By.ID, "signature").text and "X-CF-Signature" in a.find_element(By.ID, "signature").text
    assert a.find_element(By.ID, "payload-filter").text == '{"email": {"$exists": true}}'
    assert "type → event_type" in text(a)
    a.get(BASE + endpoint_path + "/help")
    assert "X-CF-Signature" in a.find_element(By.ID, "recipe").text and "X-CF-Event" in text(a)
    assert '"event_type":' in a.find_element(By.ID, "sample-body").text
    a.get(BASE + endpoint_path + "/edit")
    assert a.find_element(By.ID, "signature_header").get_attribute("value") == "X-CF-Signature"
    assert a.find_element(By.ID, "field_type").get_attribute("value") == "event_type"

    step("a rotation is pending until the tenant confirms it")
    a.get(BASE + endpoint_path)
    go(a, a.find_element(By.ID, "rotate-secret"))
    assert "previous secret, the one your receiver has" in a.find_element(By.ID, "rotation").text
    a.save_screenshot(os.path.join(SHOTS, "portal-rotation.png"))
    go(a, a.find_element(By.ID, "confirm-secret"))
    assert "The rotation is confirmed" in text(a) and not a.find_elements(By.ID, "rotation")

    step("an unsigned endpoint says what that means")
    a.get(BASE + endpoint_path + "/edit")
    Select(a.find_element(By.ID, "signature_profile")).select_by_value("none")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "not signed" in a.find_element(By.ID, "unsigned-warning").text
    a.get(BASE + endpoint_path + "/edit")
    Select(a.find_element(By.ID, "signature_profile")).select_by_value("herald")
    Select(a.find_element(By.ID, "payload_format")).select_by_value("raw")
    a.find_element(By.ID, "payload_filter").clear()
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert not a.find_elements(By.ID, "unsigned-warning") and not a.find_elements(By.ID, "payload-filter")
    signature = a.find_element(By.ID, "signature").text
    assert signature.startswith("herald") and "(" not in signature, signature

    step("a rate limit is checked beside its field and shown")
    a.get(BASE + endpoint_path + "/edit")
    a.find_element(By.ID, "rate_limit").send_keys("fast")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "A whole number" in a.find_element(By.ID, "rate_limit-error").text
    field = a.find_element(By.ID, "rate_limit")
    field.clear()
    field.send_keys("25")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert a.find_element(By.ID, "rate-limit").text == "25 requests per second", a.find_element(By.ID, "rate-limit").text


def failing_endpoint(a):
    """An endpoint whose receiver fails: auto-disabled, Recover counts, Activate replays, Retry."""
    step("an endpoint whose receiver fails is auto-disabled after its fifth failure in a row")
    a.get(BASE + "/portal/endpoints/new")
    a.find_element(By.ID, "url").send_keys(FLAKY)
    a.find_element(By.CSS_SELECTOR, "input[name=event_types][value='client.*']").click()
    a.find_element(By.CSS_SELECTOR, "input[name=dpa]").click()
    a.find_element(By.ID, "dpa_confirmed_by").send_keys("Ada Lovelace")
    go(a, a.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    endpoint_path = urllib.parse.urlparse(a.current_url).path
    endpoint_id = endpoint_path.rsplit("/", 1)[1]
    failed_log = f"/portal/deliveries?endpoint_id={endpoint_id}&status=failed"
    # The test ladder makes 4 attempts: the first test delivery fails for good, the
    # second's first attempt is the fifth failure in a row.
    go(a, a.find_element(By.ID, "send-test"))
    a.get(BASE + failed_log)
    wait_for(a, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-status=failed]"), "the first test delivery to fail")
    a.get(BASE + endpoint_path)
    go(a, a.find_element(By.ID, "send-test"))
    wait_for(a, lambda d: badge(d) == "auto-disabled", "the endpoint to be disabled")
    assert "failed" in a.find_element(By.CSS_SELECTOR, "main p small").text, text(a)

    step("an event for a disabled endpoint is kept as skipped")
    note = "<script>alert('data')</script>"
    event_id = "evt_skipped_note"
    assert call("POST", "/v1/events", {"id": event_id, "type": "client.created", "data": {"note": note}}, os.environ["TENANT_A_KEY"]) == 202
    # The second test delivery's retry is skipped too: this one is found by its event.
    a.get(BASE + f"/portal/deliveries?endpoint_id={endpoint_id}&status=skipped&event_id={event_id}")
    wait_for(a, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-status=skipped]"), "the event's skipped delivery")
    go(a, a.find_element(By.CSS_SELECTOR, "tbody a"))
    assert note in a.find_element(By.ID, "payload").text, "event data shows as text"
    assert "<script>alert('data')" not in a.page_source

    step("Recover counts the failed deliveries before sending anything")
    a.get(BASE + endpoint_path)
    go(a, a.find_element(By.ID, "count-recover"))
    assert "1 failed deliveries" in a.find_element(By.ID, "recover").text, a.find_element(By.ID, "recover").text
    assert a.find_element(By.ID, "confirm-recover").text == "Send 1 again"

    step("the failed attempt shows the receiver's answer as text, and the headers sent")
    a.get(BASE + failed_log)
    go(a, a.find_element(By.CSS_SELECTOR, "tbody a"))
    excerpt = a.find_element(By.CSS_SELECTOR, "pre.response-excerpt").get_attribute("textContent")
    assert "<script>" in excerpt and "HTTP 503" in text(a)
    assert "<script>alert" not in a.page_source
    sent = a.find_element(By.CSS_SELECTOR, "pre.request-headers").get_attribute("textContent")
    assert "webhook-id: " in sent and "X-Herald-Request-ID: " in sent and "(not shown)" in sent, sent
    failed_delivery = urllib.parse.urlparse(a.current_url).path

    step("after the receiver is fixed, Activate sends the skipped deliveries")
    assert call("POST", "", {}, base=os.environ["HERALD_HEAL_URL"]) == 200
    a.get(BASE + endpoint_path)
    a.find_element(By.CSS_SELECTOR, "input[name=replay_skipped]").click()
    go(a, a.find_element(By.ID, "activate"))
    replayed = re.search(r"(\d+) skipped deliveries are being sent", text(a))
    assert replayed and int(replayed.group(1)) >= 1, text(a)
    a.get(BASE + f"/portal/deliveries?endpoint_id={endpoint_id}&status=skipped")
    wait_for(a, lambda d: "No deliveries match" in text(d), "the skipped deliveries to be sent")

    step("Retry sends a failed delivery again")
    a.get(BASE + failed_delivery)
    go(a, a.find_element(By.ID, "retry"))
    wait_for(a, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-status=delivered]"), "the retried delivery to arrive")
    a.save_screenshot(os.path.join(SHOTS, "portal-delivery.png"))
    a.get(BASE + "/portal/deliveries?event_id=nonexistent")
    assert "No deliveries match" in text(a)

    step("rotating the secret shows a new one")
    a.get(BASE + endpoint_path)
    go(a, a.find_element(By.ID, "reveal-secret"))
    old = a.find_element(By.ID, "secret").text
    go(a, a.find_element(By.ID, "rotate-secret"))
    new = a.find_element(By.ID, "secret").text
    assert new.startswith("whsec_") and new != old and "was rotated" in text(a)


def others(b, endpoint_path, delivery_path, source_path):
    """Another tenant, a read-only session and a tampered cookie."""
    step("another tenant's session sees none of it")
    b.get(BASE + os.environ["PORTAL_LINK_B"])
    assert "No endpoints yet" in text(b)
    b.get(BASE + endpoint_path)
    assert "Not found" in text(b), text(b)
    b.get(BASE + delivery_path)
    assert "Not found" in text(b), text(b)
    b.get(BASE + "/portal/deliveries")
    assert "No deliveries match" in text(b)
    for page in ["/help", "/edit", "?period=7d"]:
        b.get(BASE + endpoint_path + page)
        assert "Not found" in text(b), (page, text(b))
    b.get(BASE + "/portal/endpoints")
    cookie_b = session_cookie(b)
    csrf_b = b.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    for action in ["/disable", "/enable", "/activate", "/test", "/secret", "/rotate-secret", "/recover", ""]:
        assert post(endpoint_path + action, {"csrf": csrf_b, "since": "2026-01-01T00:00", "url": "https://b.example.com"}, cookie_b) == 404, action
    assert post(delivery_path + "/retry", {"csrf": csrf_b}, cookie_b) == 404
    b.get(BASE + source_path)
    assert "Not found" in text(b), text(b)
    for action in ["/secret", "/rotate-url", "/delete", ""]:
        assert post(source_path + action, {"csrf": csrf_b, "name": "taken"}, cookie_b) == 404, action

    step("a read-only session can look but not change")
    b.delete_all_cookies()
    b.get(BASE + os.environ["PORTAL_LINK_A_READ_ONLY"])
    assert "read-only" in text(b)
    assert not b.find_elements(By.LINK_TEXT, "New endpoint")
    b.get(BASE + endpoint_path)
    assert not b.find_elements(By.ID, "disable")
    csrf_ro = b.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    assert post(endpoint_path + "/disable", {"csrf": csrf_ro}, session_cookie(b)) == 403
    # A source's URL is a credential for some sources: not shown; its secret not revealed.
    b.get(BASE + source_path)
    assert not b.find_elements(By.ID, "source-url") and not b.find_elements(By.ID, "reveal-secret")
    assert "/in/hin_" not in b.page_source
    assert post(source_path + "/secret", {"csrf": csrf_ro}, session_cookie(b)) == 403

    step("a tampered cookie is a fresh sign-in")
    b.delete_all_cookies()
    b.get(BASE + "/portal/endpoints")
    b.add_cookie({"name": "herald_portal", "value": "f" * 64, "path": "/portal"})
    b.get(BASE + "/portal/endpoints")
    assert "Signed out" in text(b)


def send_webhook(path, body, headers):
    """A sender's POST to a source's URL; returns the status and the answer."""
    request = urllib.request.Request(BASE + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def inbound(a):
    step("a source is created through its form, errors next to their fields")
    a.get(BASE + "/portal/sources")
    assert "No sources yet." in text(a)
    go(a, a.find_element(By.ID, "new-source"))
    Select(a.find_element(By.ID, "mapping")).select_by_value("path")
    go(a, a.find_element(By.ID, "save"))
    assert "is required" in a.find_element(By.ID, "name-error").text
    assert "is not a path" in a.find_element(By.ID, "event_type_path-error").text
    a.find_element(By.ID, "name").send_keys("Landing <i>pages</i>")
    a.find_element(By.ID, "service").send_keys("Creatio")
    Select(a.find_element(By.ID, "method")).select_by_value("token")
    a.find_element(By.ID, "header").send_keys("X-Token")
    a.find_element(By.ID, "event_type_path").send_keys("$.EntityName")
    a.find_element(By.ID, "event_types").send_keys("Contact = client.created")
    go(a, a.find_element(By.ID, "save"))
    assert "The source was created." in text(a), text(a)
    assert "Landing <i>pages</i>" in text(a) and "<i>pages" not in a.page_source
    source_path = urllib.parse.urlparse(a.current_url).path
    url = a.find_element(By.ID, "source-url").text
    path = urllib.parse.urlparse(url).path
    assert path.startswith("/in/hin_"), url
    go(a, a.find_element(By.ID, "reveal-secret"))
    token = a.find_element(By.ID, "source-secret").text
    assert "Contact → client.created" in a.find_element(By.ID, "mapping").text

    step("what senders post shows with status badges; a parse error is marked in the body")
    headers = {"Content-Type": "application/json", "X-Token": token}
    status, answer = send_webhook(path, b'{"Name": "Ann", "EntityName": "Order"}', headers)
    assert status == 200 and answer["status"] == "parse_error", answer
    status, answer = send_webhook(path, b'{"Name": "Bo", "EntityName": "Contact"}', headers)
    assert status == 200 and answer["status"] == "processed", answer
    status, _ = send_webhook(path, b'{"Name": ', headers)
    assert status == 400
    status, _ = send_webhook(path, b'{"EntityName": "Contact"}', {"Content-Type": "application/json", "X-Token": "guess"})
    assert status == 401
    a.get(BASE + "/portal/inbound")
    for badge_status in ["parse_error", "processed", "rejected"]:
        assert a.find_elements(By.CSS_SELECTOR, f"[data-status={badge_status}]"), badge_status
    a.save_screenshot(os.path.join(SHOTS, "portal-inbound.png"))
    Select(a.find_element(By.NAME, "status")).select_by_value("parse_error")
    go(a, a.find_element(By.XPATH, "//form[@class='filters']//button"))
    rows = a.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 2, len(rows)
    go(a, a.find_element(By.XPATH, "//tr[contains(., 'registered entity')]//a"))
    assert a.find_element(By.ID, "error-field").text == "$.EntityName"
    assert "'Order' is not a registered entity" in a.find_element(By.ID, "error").text
    assert a.find_element(By.ID, "error-mark").text == '"Order"'
    a.save_screenshot(os.path.join(SHOTS, "portal-inbound-webhook.png"))
    webhook_path = urllib.parse.urlparse(a.current_url).path
    assert post(webhook_path + "/replay", {"csrf": "0" * 32}, session_cookie(a)) == 403

    step("the mapping is fixed and the stored webhook is processed again")
    a.get(BASE + source_path + "/edit")
    assert a.find_element(By.ID, "event_type_path").get_attribute("value") == "$.EntityName"
    a.find_element(By.ID, "event_types").send_keys("\nOrder = client.updated")
    go(a, a.find_element(By.ID, "save"))
    assert "The changes were saved." in text(a), text(a)
    a.get(BASE + webhook_path)
    go(a, a.find_element(By.ID, "replay"))
    assert "processed again" in text(a)
    assert a.find_element(By.CSS_SELECTOR, "main .badge").text == "processed"
    assert "client.updated" in text(a)

    step("a syntax error is marked where the parser stopped")
    a.get(BASE + "/portal/inbound?status=parse_error")
    go(a, a.find_element(By.XPATH, "//tr[contains(., 'invalid JSON')]//a"))
    assert a.find_elements(By.ID, "error-mark") or "ends" in a.find_element(By.ID, "error").text

    step("saving a source through the form keeps what it does not show changed")
    a.get(BASE + "/portal/sources/new")
    a.find_element(By.ID, "name").send_keys("Payments")
    Select(a.find_element(By.ID, "method")).select_by_value("stripe")
    a.find_element(By.ID, "tolerance_seconds").send_keys("120")
    go(a, a.find_element(By.ID, "save"))
    assert "120 s tolerance" in a.find_element(By.ID, "verification").text, text(a)
    stripe_path = urllib.parse.urlparse(a.current_url).path
    a.get(BASE + stripe_path + "/edit")
    go(a, a.find_element(By.ID, "save"))
    assert "The changes were saved." in text(a), text(a)
    assert "120 s tolerance" in a.find_element(By.ID, "verification").text, text(a)
    return source_path


def sign_out(a):
    step("signing out ends the session; a second link opens a new one")
    a.get(BASE + "/portal/endpoints")
    go(a, a.find_element(By.XPATH, "//button[text()='Sign out']"))
    a.get(BASE + "/portal/endpoints")
    assert "Signed out" in text(a)
    a.get(BASE + os.environ["PORTAL_LINK_A2"])
    assert re.search(r"/portal/endpoints$", a.current_url)


first = browser()
endpoint, delivery = tenant_a(first)
profiles(first, endpoint)
failing_endpoint(first)
source = inbound(first)
others(browser(), endpoint, delivery, source)
sign_out(first)
print("portal: all steps passed", flush=True)
