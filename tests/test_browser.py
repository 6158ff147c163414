"""End to end in a real browser: `streamlit run app.py` on 127.0.0.1, Debian's chromium driven by
selenium — train from the home page, watch the live chart gain points, open recommendations.

Skipped when chromium/chromedriver/selenium are missing (`.ci/run` installs them). Screenshots go
to the test's tmp dir, or to assets/screenshots/ with RECVIZ_SCREENSHOTS=1 (the README's images).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
selenium = pytest.importorskip("selenium")
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                                reason="Debian chromium + chromium-driver not installed")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# plotly 7 ships arrays as typed-array objects; calcdata holds the drawn points per trace
POINTS_JS = """return Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(p => (p.calcdata || []).reduce((n, trace) => n + trace.filter(pt => pt.y === pt.y).length, 0));"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(recviz_home):
    port = free_port()
    env = {**os.environ, "RECVIZ_HOME": str(recviz_home), "RECVIZ_WORKER_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not come up:\n" + proc.stdout.read().decode(errors="replace")[-3000:])
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
    _kill_workers(recviz_home)


def _kill_workers(home: Path) -> None:
    """Workers run in their own sessions (they outlive a page reload): stop the ones this test made."""
    from recviz.runs.store import RunStore, pid_alive

    os.environ["RECVIZ_HOME"] = str(home)
    pids = {r.pid for r in RunStore().list(limit=100) if r.pid}
    lock = home / "drain.lock"
    if lock.exists() and lock.read_text().strip().isdigit():
        pids.add(int(lock.read_text().strip()))
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1280,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def shots_dir(tmp_path: Path) -> Path:
    if os.environ.get("RECVIZ_SCREENSHOTS"):
        out = ROOT / "assets" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path


def click_text(driver, tag: str, text: str, timeout: float = 30) -> None:
    xpath = f"//{tag}[contains(normalize-space(.), '{text}')]"
    WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.XPATH, xpath))
    driver.find_elements(By.XPATH, xpath)[0].click()


def wait_text(driver, text: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)


def test_train_from_home_watch_live_curve_then_recommendations(server, browser, tmp_path):
    shots = shots_dir(tmp_path)
    browser.get(server)
    wait_text(browser, "Recent runs")
    browser.save_screenshot(str(shots / "home.png"))

    click_text(browser, "button", "on the built-in dataset")
    wait_text(browser, "Run #1")
    # the fragment refreshes from the store: the curves must gain points while it trains
    WebDriverWait(browser, 90).until(lambda d: sum(d.execute_script(POINTS_JS) or [0]) >= 4)
    first = sum(browser.execute_script(POINTS_JS))
    WebDriverWait(browser, 90).until(lambda d: sum(d.execute_script(POINTS_JS) or [0]) > first
                                     or "done" in d.find_element(By.TAG_NAME, "body").text)
    wait_text(browser, "done", timeout=120)
    time.sleep(2.5)  # one more fragment tick draws the final epoch
    browser.execute_script("document.querySelector('.js-plotly-plot').scrollIntoView({block: 'center'})")
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "train.png"))

    click_text(browser, "a", "Recommendations")
    wait_text(browser, "Top ")
    wait_text(browser, "History")
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "recommendations.png"))

    for page in ("Data", "Results"):
        click_text(browser, "a", page)
        wait_text(browser, "Interactions" if page == "Data" else "HR@K and NDCG@K")
        time.sleep(1.5)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(shots / f"{page.lower()}.png"))
