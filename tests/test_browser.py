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
pytestmark = [pytest.mark.slow, pytest.mark.alone,  # a real browser waiting on a live app
              pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                                 reason="Debian chromium + chromium-driver not installed")]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
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
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # streamlit can take long to stop: do not leave it behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    _kill_workers(recviz_home)


def _kill_workers(home: Path) -> None:
    """Workers run in their own sessions (they outlive a page reload): stop the ones this test made."""
    from recviz.experiments.liveness import pid_alive
    from recviz.experiments.store import RunStore

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

    # Results compares like with like: a second dataset gets its own panel, and a sweep over three
    # seeds draws each point as a mean with an error bar (what the README's screenshots show).
    env = {**os.environ, "RECVIZ_HOME": os.environ["RECVIZ_HOME"]}
    subprocess.run([sys.executable, "-m", "recviz", "sweep", "--dataset", "synthetic", "--model", "gmf",
                    "--param", "emb_dim", "--values", "8,32", "--seeds", "0,1,2", "--epochs", "4"],
                   check=True, capture_output=True, env=env, cwd=ROOT)
    subprocess.run([sys.executable, "-m", "recviz", "train", "--dataset", "synthetic-implicit", "--model", "itemknn"],
                   check=True, capture_output=True, env=env, cwd=ROOT)

    for page in ("Data", "Results"):
        click_text(browser, "a", page)
        wait_text(browser, "Interactions" if page == "Data" else "HR@K and NDCG@K")
        time.sleep(1.5)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(shots / f"{page.lower()}.png"))
    wait_text(browser, "HR@10 vs emb_dim")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "synthetic-implicit · leave-one-out" in body and "synthetic · leave-one-out" in body  # two panels
    browser.execute_script("""Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.textContent.includes('vs emb_dim')).scrollIntoView({block: 'center'})""")
    time.sleep(1)
    bars = browser.execute_script("""return Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(p => p.textContent.includes('vs emb_dim')).data.map(t => [t.name, t.error_y && t.error_y.array])""")
    assert list(dict(bars)) == ["gmf"], bars  # NeuMF's one run at its default is no curve
    assert len(dict(bars)["gmf"]) == 2 and all(b > 0 for b in dict(bars)["gmf"])  # mean ± std over 3 seeds
    browser.save_screenshot(str(shots / "results-sweep.png"))


# ---- defect 1 of issue 14: a saved dataset's name gets a new version under a trained run ---------------
TABLES_JS = """return Array.from(document.querySelectorAll('table[role=grid]')).map(t =>
  Array.from(t.querySelectorAll('tr')).map(r => Array.from(r.querySelectorAll('th,td')).map(c => c.textContent)));"""


def grid(driver, first_column: str) -> list[dict]:
    """The rows of the st.dataframe whose header starts with `first_column` (read from the grid's
    accessible table: the drawn one is a canvas)."""
    for table in driver.execute_script(TABLES_JS) or []:
        if table and table[0] and table[0][0] == first_column:
            return [dict(zip(table[0], row)) for row in table[1:]]
    return []


def choose(driver, label: str, option: str) -> None:
    """Pick `option` in the st.selectbox labelled `label`, as a person does: open it, click the option."""
    box = driver.find_element(By.CSS_SELECTOR, f"input[role='combobox'][aria-label='{label}']")
    box.find_element(By.XPATH, "following-sibling::button").click()
    click_text(driver, "*[@role='option']", option)
    WebDriverWait(driver, 30).until(lambda d: option in d.find_element(
        By.CSS_SELECTOR, f"input[role='combobox'][aria-label='{label}']").get_attribute("value"))


def type_into(driver, label: str, text: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.ENTER)


def upload_and_save(driver, path: Path, name: str, min_item: int = 0, replace: bool = False) -> None:
    click_text(driver, "p", "Upload a file")  # the tab
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='file']"))
    driver.find_elements(By.CSS_SELECTOR, "input[type='file']")[0].send_keys(str(path))
    wait_text(driver, "Save as")
    if min_item:
        type_into(driver, "k-core: min interactions per item", str(min_item))
    type_into(driver, "Save as", name)
    if replace:
        click_text(driver, "label", "save this as v")
    time.sleep(1)
    click_text(driver, "button", "Validate and save")


def test_an_old_run_keeps_its_items_after_its_dataset_name_gets_a_new_version(server, browser, tmp_path, recviz_home):
    """Issue 14's first defect, end to end: save `mlcopy`, train ItemKNN on it, save `mlcopy` again
    with a k-core filter (other items, other internal indices): the old run's top-10 on the
    Recommendations page must still be the items `recviz recommend` prints for it."""
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"] + [f"user{u},{1000 + 7 * int(i)},{1 + (u + k) % 5},{1000 * u + k}"
                                             for u in range(40) for k, i in enumerate(rng.choice(120, 12, False))]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("\n".join(rows) + "\n")

    browser.get(f"{server}/data")
    upload_and_save(browser, ratings, "mlcopy")
    wait_text(browser, "Saved 'mlcopy' v1")
    browser.get(f"{server}/train")
    wait_text(browser, "Launch")
    choose(browser, "Dataset", "mlcopy")
    choose(browser, "Model", "ItemKNN")
    click_text(browser, "button", "Launch")
    wait_text(browser, "Run #1 · ItemKNN on mlcopy")
    wait_text(browser, "fitted in", timeout=90)

    def page_top10() -> tuple[str, list[str]]:
        browser.get(f"{server}/recommendations")
        WebDriverWait(browser, 60).until(lambda d: grid(d, "rank"))
        user = browser.find_element(By.CSS_SELECTOR, "input[aria-label='Raw user id']").get_attribute("value")
        return user, [row["item"] for row in grid(browser, "rank")][:10]

    user, before = page_top10()
    env = {**os.environ, "RECVIZ_HOME": str(recviz_home)}
    cli = subprocess.run([sys.executable, "-m", "recviz", "recommend", "--run", "1", "--user", user, "--json"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    printed = [str(row["item"]) for row in json.loads(cli.stdout)["items"]]
    assert before == printed and len(before) == 10

    browser.get(f"{server}/data")
    upload_and_save(browser, ratings, "mlcopy", min_item=5, replace=True)
    wait_text(browser, "Saved 'mlcopy' v2")
    WebDriverWait(browser, 60).until(lambda d: [row["version"] for row in grid(d, "version")] == ["v1", "v2"])
    same_user, after = page_top10()
    assert same_user == user
    browser.save_screenshot(str(tmp_path / "versions.png"))
    assert after == printed, "the old run shows other items after its dataset's name got a new version"
