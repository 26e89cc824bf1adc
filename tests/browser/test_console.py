"""The admin console in a real browser, as an admin uses it: sign in with an admin token, find
the create the panel refused on Needs you, open it, read the failing task and the panel's own
answer, retry it, follow the service's timeline. No page shows a secret, a form without its
CSRF value changes nothing, a panel answer holding a script is shown as text, and a billing
token cannot sign in. Screenshots of each page are kept (see conftest.shot)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from provisiond import tokens
from provisiond.models import Job
from provisiond.render import host_name
from tests.browser.conftest import SCRIPT, TAKEN_ANSWER
from tests.helpers import serving

CREATE_TASK = "Create the account (createacct)"


def one(driver, css: str):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    assert len(found) == 1, f"{css}: {len(found)} elements on {driver.current_url}"
    return found[0]


def arrive(driver, path: str) -> None:
    """Wait until the browser shows ``path`` (after a click or a form's redirect)."""
    WebDriverWait(driver, 15).until(lambda d: d.current_url.split("?")[0].endswith(path))
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def sign_in(driver, token: str) -> None:
    one(driver, 'input[name="token"]').send_keys(token)
    one(driver, 'form[action="/ui/login"] [type="submit"]').click()
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def looked_at(driver, stack) -> str:
    """Checks every page gets: one <h1>, no secret anywhere in its source, and no error in the
    browser's console since the last look (a style or script the CSP refused, an asset that did
    not load); the page's own 4xx status, when it is one on purpose, is no such error. Returns
    the page's text."""
    source = driver.page_source
    leaked = [n for n, secret in enumerate(stack.secrets) if secret in source]
    assert not leaked, f"secrets {leaked} shown on {driver.current_url}"
    assert len(driver.find_elements(By.TAG_NAME, "h1")) == 1, driver.current_url
    own_status = driver.current_url + " - Failed to load resource"
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and not entry["message"].startswith(own_status)]
    assert not errors, errors
    return one(driver, "main").text


def submit(driver, action: str) -> None:
    one(driver, f'form[action="{action}"] [type="submit"]').click()


def status_of(job_id: int) -> str:
    return Job.get_by_id(job_id).status


def test_an_admin_finds_the_refused_create_reads_the_panels_answer_and_retries_it(browser, shot, stack):
    taken, evil, ok = (stack.jobs[ref] for ref in ("INV-TAKEN", "INV-EVIL", "INV-OK"))
    browser.get(stack.url + "/ui/")
    arrive(browser, "/ui/login")
    looked_at(browser, stack)
    shot("login")
    sign_in(browser, stack.admin)
    arrive(browser, "/ui/")

    # Needs you: both refused creates (they failed in the same run); not the one that succeeded.
    looked_at(browser, stack)
    rows = browser.find_elements(By.CSS_SELECTOR, "table#needs tr[data-job]")
    assert sorted(r.get_attribute("data-job") for r in rows) == sorted([str(evil), str(taken)])
    row = one(browser, f'table#needs tr[data-job="{taken}"]')
    cell = {name: row.find_element(By.CSS_SELECTOR, f"td.{name}").text.strip()
            for name in ("ref", "server", "action", "failed-task", "answer", "waiting")}
    assert cell["ref"] == "INV-TAKEN" and cell["server"] == "whm1" and cell["action"] == "create"
    assert cell["failed-task"] == CREATE_TASK
    assert TAKEN_ANSWER in cell["answer"] and cell["waiting"]
    assert row.find_element(By.CSS_SELECTOR, "td.ref a").get_attribute("href").endswith("/ui/services/INV-TAKEN")
    assert "whm1" in one(browser, "#by-server").text and "cpanel" in one(browser, "#by-panel").text
    shot("needs")

    # The job page: the failing task and the panel's answer at the top, this job's host only.
    row.find_element(By.CSS_SELECTOR, f'a[href="/ui/jobs/{taken}"]').click()
    arrive(browser, f"/ui/jobs/{taken}")
    looked_at(browser, stack)
    assert one(browser, "#job-status").text.strip() == "failed"
    assert CREATE_TASK in one(browser, "#failing-task").text
    assert TAKEN_ANSWER in one(browser, "pre#panel-answer").text
    assert one(browser, 'ol#attempts li[data-attempt="1"]')
    failed = browser.find_elements(By.CSS_SELECTOR, 'ul#task-tree li[data-status="failed"]')
    assert [li.text for li in failed if CREATE_TASK in li.text], "the failed createacct task is not in the tree"
    stdout = one(browser, "pre#stdout").text
    assert host_name(taken) in stdout and host_name(ok) not in stdout and host_name(evil) not in stdout
    download = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-disposition') || '']))",
        one(browser, "a#artifacts").get_attribute("href"))
    assert download[0] == 200 and ".tar.gz" in download[1], download
    shot("job")

    # A form without the session's CSRF value is refused and changes nothing.
    browser.execute_script(
        "document.querySelector('form[action=\"/ui/jobs/' + arguments[0] + '/retry\"] input[name=\"csrf\"]').remove()",
        taken)
    submit(browser, f"/ui/jobs/{taken}/retry")
    arrive(browser, f"/ui/jobs/{taken}/retry")
    assert one(browser, "h1").text == "Form refused" and "CSRF" in looked_at(browser, stack)
    assert status_of(taken) == "failed"
    shot("csrf-refused")

    # Retry with the form as the page gives it: the job is queued again.
    browser.get(f"{stack.url}/ui/jobs/{taken}")
    submit(browser, f"/ui/jobs/{taken}/retry")
    WebDriverWait(browser, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".flash"))
    looked_at(browser, stack)
    shot("job-retried")
    assert status_of(taken) == "queued"
    browser.get(f"{stack.url}/ui/jobs/{taken}")
    assert one(browser, "#job-status").text.strip() == "queued"

    # The daemon runs it again, the panel refuses again: two attempts, the first still readable.
    stack.work()
    browser.get(f"{stack.url}/ui/jobs/{taken}")
    assert one(browser, "#job-status").text.strip() == "failed"
    attempts = browser.find_elements(By.CSS_SELECTOR, "ol#attempts li[data-attempt]")
    assert [li.get_attribute("data-attempt") for li in attempts] == ["1", "2"]
    one(browser, 'ol#attempts li[data-attempt="1"] a[href$="?attempt=1"]').click()
    WebDriverWait(browser, 15).until(lambda d: d.current_url.endswith("?attempt=1"))
    looked_at(browser, stack)
    assert TAKEN_ANSWER in one(browser, "pre#panel-answer").text
    shot("job-first-attempt")

    # The service's timeline: its create job and the attempt the panel refused.
    browser.get(f"{stack.url}/ui/services/INV-TAKEN")
    looked_at(browser, stack)
    timeline = one(browser, "ol#timeline")
    kinds = {li.get_attribute("data-kind") for li in timeline.find_elements(By.CSS_SELECTOR, "li[data-kind]")}
    assert {"job", "attempt", "state"} <= kinds, kinds
    assert TAKEN_ANSWER in timeline.text and CREATE_TASK in timeline.text
    shot("service")

    browser.get(f"{stack.url}/ui/services")
    looked_at(browser, stack)
    refs = {r.get_attribute("data-ref") for r in browser.find_elements(By.CSS_SELECTOR, "table#services tr[data-ref]")}
    assert refs == {"INV-OK", "INV-TAKEN", "INV-EVIL"}
    shot("services")

    browser.get(f"{stack.url}/ui/servers")
    looked_at(browser, stack)
    assert one(browser, 'table#servers tr[data-server="whm1"]')
    shot("servers")

    browser.get(f"{stack.url}/ui/overview")
    looked_at(browser, stack)
    for css in ("svg#attempts-chart", "#jobs-by-status", "#oldest-queued"):
        one(browser, css)
    assert "browser-test-worker" in one(browser, "#daemons").text
    shot("overview")


def test_a_panel_answer_holding_a_script_is_shown_as_text_and_never_run(browser, shot, stack):
    evil = stack.jobs["INV-EVIL"]
    browser.get(stack.url + "/ui/login")
    sign_in(browser, stack.admin)
    arrive(browser, "/ui/")
    assert SCRIPT in one(browser, f'table#needs tr[data-job="{evil}"] td.answer').text

    browser.get(f"{stack.url}/ui/jobs/{evil}")
    looked_at(browser, stack)
    assert SCRIPT in one(browser, "pre#panel-answer").text
    assert "window.__pwned=1" in one(browser, "pre#stdout").text
    shot("job-script-answer")
    browser.get(f"{stack.url}/ui/services/INV-EVIL")
    assert SCRIPT in one(browser, "ol#timeline").text
    for path in ("/ui/", f"/ui/jobs/{evil}", "/ui/services/INV-EVIL"):
        browser.get(stack.url + path)
        looked_at(browser, stack)
        assert browser.execute_script("return window.__pwned") is None, path
        # Not merely blocked by the CSP: no element made of the answer exists at all.
        assert not browser.execute_script(
            "return [...document.querySelectorAll('script')].some(s => s.outerHTML.includes('__pwned'))"), path


def test_a_billing_token_cannot_sign_in(browser, database, settings, vault):
    billing = tokens.create("shop", scope="billing")
    with serving(settings, vault) as port:
        url = f"http://127.0.0.1:{port}"
        browser.get(url + "/ui/")
        arrive(browser, "/ui/login")
        sign_in(browser, billing)
        arrive(browser, "/ui/login")
        assert "needs an admin token" in one(browser, ".problem").text
        assert browser.get_cookie("provisiond_session") is None
        browser.get(url + "/ui/servers")
        arrive(browser, "/ui/login")
