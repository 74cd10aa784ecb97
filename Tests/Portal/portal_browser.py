"""The tenant portal in a real headless Chromium, against a running `herald api` and worker.

Environment: HERALD_BASE_URL, PORTAL_LINK_A, PORTAL_LINK_A2, PORTAL_LINK_A_READ_ONLY,
PORTAL_LINK_B (paths from POST /v1/tenants/{id}/portal-links), HERALD_RECEIVER_URL (a
receiver answering 200), SCREENSHOTS (a folder). Prints one line per step; any failed
check raises, so the exit status tells.
"""

import atexit
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["HERALD_BASE_URL"]
RECEIVER = os.environ["HERALD_RECEIVER_URL"]
SHOTS = os.environ["SCREENSHOTS"]
os.makedirs(SHOTS, exist_ok=True)


def browser():
    options = Options()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    atexit.register(driver.quit)
    return driver


def step(text):
    print("portal:", text, flush=True)


def text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for(driver, condition, what, seconds=30):
    """Reloads until `condition(driver)` holds; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if condition(driver):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}; the page says: {text(driver)[:600]}")
        time.sleep(0.3)
        driver.refresh()


def go(driver, element):
    """Clicks what submits a form or follows a link, and waits until the next page has
    replaced this one (the old root gone, however the driver reports it) and loaded."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        try:
            page.is_enabled()
            return False
        except WebDriverException:
            return driver.execute_script("return document.readyState") == "complete"

    WebDriverWait(driver, 20).until(replaced)


def session_cookie(driver):
    cookie = driver.get_cookie("herald_portal")
    assert cookie and cookie["httpOnly"], cookie
    return cookie["value"]


def post(path, fields, cookie):
    """A form post outside the browser (a forged one); returns the status."""
    request = urllib.request.Request(
        BASE + path, data=urllib.parse.urlencode(fields).encode(), method="POST",
        headers={"Cookie": f"herald_portal={cookie}", "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


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
    a.save_screenshot(os.path.join(SHOTS, "portal-endpoint.png"))

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
    a.save_screenshot(os.path.join(SHOTS, "portal-delivery.png"))

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
    a.get(BASE + "/portal/endpoints")
    a.save_screenshot(os.path.join(SHOTS, "portal-endpoints.png"))
    return endpoint_path, delivery_path


def others(b, endpoint_path, delivery_path):
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
    cookie_b = session_cookie(b)
    csrf_b = b.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    assert post(endpoint_path + "/disable", {"csrf": csrf_b}, cookie_b) == 404

    step("a read-only session can look but not change")
    b.delete_all_cookies()
    b.get(BASE + os.environ["PORTAL_LINK_A_READ_ONLY"])
    assert "read-only" in text(b)
    assert not b.find_elements(By.LINK_TEXT, "New endpoint")
    b.get(BASE + endpoint_path)
    assert not b.find_elements(By.ID, "disable")
    csrf_ro = b.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    assert post(endpoint_path + "/disable", {"csrf": csrf_ro}, session_cookie(b)) == 403

    step("a tampered cookie is a fresh sign-in")
    b.delete_all_cookies()
    b.get(BASE + "/portal/endpoints")
    b.add_cookie({"name": "herald_portal", "value": "f" * 64, "path": "/portal"})
    b.get(BASE + "/portal/endpoints")
    assert "Signed out" in text(b)


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
others(browser(), endpoint, delivery)
sign_out(first)
print("portal: all steps passed", flush=True)
