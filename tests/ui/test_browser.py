"""The inspector in a real browser: Debian's headless Chromium, driven by selenium through /usr/bin/chromedriver.

The tests search, open a case, edit it (and fail an edit), delete and restore it, open a run and
an episode's trace, and check that a hostile case text is shown as text; they save screenshots of
the main pages (to docs/images/ui_*.png, the README's pictures, with MEMENTO_SCREENSHOTS=docs/images). Skipped, with the reason, where
chromium, chromedriver or selenium is missing (`make test` installs them as root with apt).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.ui.conftest import HOSTILE_TASK

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
# The README's pictures are refreshed on request (MEMENTO_SCREENSHOTS=docs/images); a plain run
# writes them to a temporary folder, so `make test` leaves the work tree as it found it.
SCREENSHOTS = Path(os.environ.get("MEMENTO_SCREENSHOTS") or tempfile.mkdtemp(prefix="memento-ui-shots-"))
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,800"]


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
                    "`make test` installs them as root, or: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="memento-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1280, 800)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def site(start_server, ui_bank, tiny_run):
    return start_server(ui_bank, runs=tiny_run.parent, policy=ui_bank.parent / "policy.pt", page_size=10)


def by_id(driver, name):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, name)


def follow(driver, element) -> None:
    """Click a link or a submit button and wait until the browser has left the page (a click does not wait)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(lambda _: left(page))


def left(page) -> bool:
    """Whether the browser has left the page whose <html> element is `page`.

    Chrome answers a question about an element of a page it is leaving with "stale element" or, caught
    mid-navigation, with an inspector error that the node "does not belong to the document" (a CI
    failure); both mean the page is gone.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def shot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOTS / f"ui_{name}.png"))


def no_script_ran(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    assert driver.find_elements(By.TAG_NAME, "script") == [], "the page holds no script element"
    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert.text


def test_search_open_edit_delete_and_restore_a_case(browser, site):
    from selenium.webdriver.common.by import By

    browser.get(site.url + "/cases")
    by_id(browser, "q").send_keys("Which river flows through Quarry Bay?")
    follow(browser, by_id(browser, "search"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#cases tr td:first-child a")
    assert rows and rows[0].text == "acme-fail", "the most similar case comes first"
    shot(browser, "cases")
    follow(browser, rows[0])
    assert by_id(browser, "case-id").text == "acme-fail" and by_id(browser, "answer").text == "Thames"
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#plan li")] == ["Look up Quarry Bay", "Find its river"]
    assert browser.find_elements(By.CSS_SELECTOR, "#shown tr.this"), "the case is among those the agent would be shown"

    follow(browser, by_id(browser, "edit"))
    reward = by_id(browser, "field-reward")
    reward.clear()
    reward.send_keys("7")
    follow(browser, by_id(browser, "save"))
    assert "reward 7 is outside [0, 1]" in by_id(browser, "error").text
    shot(browser, "edit_error")
    browser.get(site.url + "/edit/acme-fail")
    assert by_id(browser, "field-reward").get_attribute("value") == "0", "the bad edit changed nothing"
    answer = by_id(browser, "field-answer")
    answer.clear()
    answer.send_keys("Orlen")
    follow(browser, by_id(browser, "save"))
    assert "answer changed" in by_id(browser, "saved").text and by_id(browser, "answer").text == "Orlen"

    follow(browser, by_id(browser, "delete"))
    assert browser.current_url.startswith(site.url + "/trash") and "ui.jsonl" in by_id(browser, "deleted").text
    browser.get(site.url + "/cases/acme-fail")
    assert "is not in bank" in by_id(browser, "error").text
    browser.get(site.url + "/trash")
    shot(browser, "trash")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#trash button.restore"))
    assert "Restored 1 case(s)" in by_id(browser, "restored").text and by_id(browser, "answer").text == "Orlen"


def test_a_hostile_case_is_shown_as_text(browser, site):
    from selenium.webdriver.common.by import By

    browser.get(site.url + "/cases/hostile-1")
    assert by_id(browser, "task").text == HOSTILE_TASK
    assert by_id(browser, "answer").text == "<img src=x onerror=alert(2)>"
    assert "</pre><script>alert(3)</script>" in by_id(browser, "metadata").text
    assert browser.find_elements(By.CSS_SELECTOR, "#task b, #answer img") == []
    no_script_ran(browser)
    browser.get(site.url + "/cases?namespace=acme/support")
    assert HOSTILE_TASK in browser.find_element(By.ID, "cases").text
    no_script_ran(browser)


def test_a_run_its_plots_and_an_episodes_trace(browser, site, tiny_run):
    import json

    from selenium.webdriver.common.by import By

    browser.get(site.url + "/runs")
    follow(browser, browser.find_element(By.LINK_TEXT, "tiny"))
    arms = [row.find_element(By.TAG_NAME, "td").text for row in browser.find_elements(By.CSS_SELECTOR, "#headline tr")[1:]]
    assert arms == ["none", "neural"]
    plots = browser.find_elements(By.CSS_SELECTOR, "img.plot")
    assert len(plots) == len(list(tiny_run.glob("*.png")))
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 100 for img in plots), "plots load"
    shot(browser, "run")

    records = [json.loads(line) for line in (tiny_run / "episodes.jsonl").read_text().splitlines()]
    number = next(i for i, r in enumerate(records, start=1) if r["shown"] and r["trace"]["tool_calls"])
    browser.get(site.url + f"/runs/tiny/episodes/{number}")
    assert by_id(browser, "task").text == records[number - 1]["question"]
    shown = [row.find_elements(By.TAG_NAME, "td")[1].text for row in browser.find_elements(By.CSS_SELECTOR, "#shown tr")[1:]]
    assert shown == [s["id"] for s in records[number - 1]["shown"]]
    calls = browser.find_elements(By.CSS_SELECTOR, "#tool-calls tr")[1:]
    expected = records[number - 1]["trace"]["tool_calls"]
    assert [(c.find_elements(By.TAG_NAME, "td")[2].text, c.find_elements(By.TAG_NAME, "td")[3].text) for c in calls] == [
        (call["tool"], call["tool_input"]) for call in expected]
    shot(browser, "episode")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#shown tr td a"))
    assert by_id(browser, "case-id").text == shown[0], "a shown case opens in the bank"
    assert by_id(browser, "exposure").text.startswith(f"{sum(shown[0] in [s['id'] for s in r['shown']] for r in records if r['learned'])} time(s)")
    shot(browser, "case")


def test_merge_near_duplicates(browser, site):
    from selenium.webdriver.common.by import By

    browser.get(site.url + "/duplicates?threshold=0.99&namespace=acme/support")
    groups = browser.find_elements(By.CSS_SELECTOR, "table.group")
    assert len(groups) == 1 and "dup-keep" in groups[0].text and "dup-copy" in groups[0].text
    shot(browser, "duplicates")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button.merge"))
    assert "1 duplicate(s) moved to the trash" in by_id(browser, "merged").text
    browser.get(site.url + "/cases/dup-copy")
    assert "is not in bank" in by_id(browser, "error").text
    browser.get(site.url + "/cases/dup-keep")
    assert by_id(browser, "answer").text == "Ada Vell"
