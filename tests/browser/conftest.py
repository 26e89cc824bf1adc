"""The console in a real browser: headless Chromium from Debian driven by Selenium, against the
API app served by uvicorn over real HTTP, on a database that real ansible runs on the WHM
simulator filled.

Chromium and its driver are Debian's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``;
``.ci/run`` installs them when absent). Selenium is given both paths, so Selenium Manager never
runs and nothing is downloaded. Without them the tests are skipped saying why, except under CI,
where they fail.

Each browser has a fresh profile under the test's tmp_path; that folder's path is the run
marker by which the test finds the browser processes it started (never by command name), to
end any that outlive ``quit()``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import time
import types
from pathlib import Path

import pytest

from provisiond import health, lifecycle, tokens
from provisiond.models import Job, Service, utcnow
from provisiond.sandbox.base import Response
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN
from tests.helpers import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")
SCRIPT = "<script>window.__pwned=1</script>"
TAKEN_ANSWER = "Sorry, the domain taken.example.com is already configured on this server."


# -- the browser -------------------------------------------------------------------------------

def _require_chromium() -> None:
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if absent:
        reason = (f"{' and '.join(absent)} not installed (Debian packages chromium and "
                  "chromium-driver; .ci/run installs them)")
        if os.environ.get("CI"):
            pytest.fail(f"the browser test is required under CI: {reason}")
        pytest.skip(reason)


def _marked_processes(marker: str) -> list[int]:
    """Ids of the processes whose command line holds ``marker`` (this one aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Headless Chromium under Selenium, with a fresh profile; quit (and its processes gone) at
    the end."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, were it ever asked: no network
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations, failed loads
    service = DriverService(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        deadline = time.monotonic() + 5
        while (left := _marked_processes(str(profile))) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def shot(browser, tmp_path, request):
    """shot(name) saves a full-page screenshot of the current page as ``tmp_path/screenshots/
    NAME.png``, and, when PROVISIOND_SCREENSHOTS names a folder, a copy there (in a folder per
    database, as the tests run on each). Returns the path."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    copies = os.environ.get("PROVISIOND_SCREENSHOTS")
    database = request.node.callspec.params.get("database_url", "") if hasattr(request.node, "callspec") else ""

    def take(name: str) -> Path:
        metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        picture = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "fromSurface": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path = folder / f"{name}.png"
        path.write_bytes(base64.b64decode(picture["data"]))
        if copies:
            target = Path(copies) / database if database else Path(copies)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.name)
        return path
    return take


# -- the stack ---------------------------------------------------------------------------------

def _refuse_evil_create(whm, monkeypatch) -> None:
    """The simulator refuses the create of account ``evil`` with a reason holding a script, as
    a panel (or whoever controls its answers) could; every other request is the simulator's."""
    real = whm.op_createacct

    def createacct(params):
        if params.get("username") == "evil":
            body = {"metadata": {"command": "createacct", "result": 0, "version": 1,
                                 "reason": f"Refused: {SCRIPT}"}}
            return Response(200, json.dumps(body).encode())
        return real(params)
    monkeypatch.setattr(whm, "op_createacct", createacct)


@pytest.fixture
def stack(cpanel_setup, registry, settings, vault, whm, monkeypatch):
    """Three orders worked by one real ansible run on the WHM simulator: INV-OK is created;
    INV-TAKEN is refused by the panel for good (its domain is another account's there);
    INV-EVIL is refused with a script in the panel's answer. Then the console over real HTTP.

    Yields ``url``, ``admin`` and ``billing`` (tokens), ``jobs`` (ref -> job id), ``secrets``
    (what no page may show: the WHM token, the services' passwords, the tokens) and ``work()``
    (a daemon's tick: the due jobs run for real)."""
    whm.op_createacct({"username": "squatter", "domain": "taken.example.com", "plan": "basic",
                       "password": "Squatter!Pass-42", "contactemail": "x@taken.example.com"})
    _refuse_evil_create(whm, monkeypatch)
    jobs = {}
    for ref, domain in (("INV-OK", "ok.example.com"), ("INV-TAKEN", "taken.example.com"),
                        ("INV-EVIL", "evil.example.com")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        jobs[ref] = job.id
    worker = Worker(settings, vault, owner="browser-test-worker")

    def work() -> None:
        """What a daemon's tick does: run the due jobs (waiting for the runs), then beat."""
        worker.tick(wait=True)
        health.beat(worker.owner, utcnow())
    try:
        work()
        statuses = {ref: Job.get_by_id(job_id).status for ref, job_id in jobs.items()}
        assert statuses == {"INV-OK": "succeeded", "INV-TAKEN": "failed", "INV-EVIL": "failed"}, statuses
        admin, billing = tokens.create("ops", scope="admin"), tokens.create("shop", scope="billing")
        secrets = [WHM_TOKEN, admin, billing, *(vault.decrypt(s.password) for s in Service.select())]
        with serving(settings, vault) as port:
            yield types.SimpleNamespace(url=f"http://127.0.0.1:{port}", admin=admin, billing=billing, jobs=jobs, secrets=secrets,
                                        work=work)
    finally:
        worker.shutdown()
