"""What the dashboard's browser tests share: Debian's Chromium driven by its own driver
(nothing is downloaded), and waits that end when the page shows what they wait for."""

import atexit
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["HERALD_BASE_URL"]
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


def post(path, fields, cookie_name, cookie):
    """A form post outside the browser (a forged one), with session cookie `cookie_name`;
    returns the status."""
    request = urllib.request.Request(
        BASE + path, data=urllib.parse.urlencode(fields).encode(), method="POST",
        headers={"Cookie": f"{cookie_name}={cookie}", "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
