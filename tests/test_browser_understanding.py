"""Issue 26's two panels in a real browser, on real stored runs (ItemKNN and ItemPop on ml-100k):
Results → "Compare two runs" (the verdict in words, the win/loss counts) and Recommendations →
"Why these items" (the supporting history items, with the measure named), each read from the page
and checked against what `recviz compare` / `recviz recommend --why` print for the same runs.

Slow tier, skipped without chromium (as tests/test_browser.py). With RECVIZ_SCREENSHOTS=1 the two
panels are written to assets/screenshots/compare.png and why.png (the README's images).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA
from tests.test_browser import ROOT, TABLES_JS, browser, choose, server, shots_dir, wait_text  # noqa: F401
from tests.test_browser import pytestmark as browser_marks

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [*browser_marks,  # slow; skipped without chromium
              pytest.mark.skipif(not (SHARED_DATA / "ml-100k").exists(), reason="shared ml-100k not here")]
ML100K = str(SHARED_DATA / "ml-100k")

# the panel from its subheader to the next one, in the window's pixels, once scrolled to its top
# (Streamlit scrolls its main container, not the window)
PANEL_JS = """const hs = Array.from(document.querySelectorAll('h3'));
const i = hs.findIndex(h => h.textContent.trim().startsWith(arguments[0]));
hs[i].scrollIntoView({block: 'start'});
const top = hs[i].getBoundingClientRect();
const next = hs[i + 1] ? hs[i + 1].getBoundingClientRect().top : window.innerHeight;
return [top.left, top.top, Math.min(next, window.innerHeight), window.innerWidth];"""


def table_with(driver, column: str) -> list[dict]:
    """The rows of the st.dataframe that has a column named `column` (its accessible table)."""
    for table in driver.execute_script(TABLES_JS) or []:
        if table and column in table[0]:
            return [dict(zip(table[0], row)) for row in table[1:]]
    return []


def pick(driver, label: str, option: str) -> None:
    """`choose`, once the selectbox is drawn (a page streams its elements in: on a busy machine the
    subheader can be there a while before the widgets under it)."""
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, f"input[role='combobox'][aria-label='{label}']"))
    choose(driver, label, option)


def recviz(*args: str) -> str:
    import os

    out = subprocess.run([sys.executable, "-m", "recviz", *args], capture_output=True, text=True,
                         env=dict(os.environ), cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def panel_shot(driver, heading: str, path: Path) -> None:
    """A screenshot of one panel only: the window made tall enough, scrolled to the panel's heading,
    the image cut at the next heading (and the empty sidebar left out)."""
    from io import BytesIO

    from PIL import Image

    size = driver.get_window_size()
    driver.set_window_size(size["width"], 2200)
    try:
        driver.execute_script(PANEL_JS, heading)
        time.sleep(2)  # charts redraw after a resize and a scroll
        left, top, bottom, width = driver.execute_script(PANEL_JS, heading)
        image = Image.open(BytesIO(driver.get_screenshot_as_png()))
        scale = image.width / width
        box = (int(max(left - 24, 0) * scale), int(max(top - 16, 0) * scale), int((width - 24) * scale),
               int(bottom * scale))
        image.crop(box).convert("RGB").quantize(colors=128).save(path, optimize=True)
    finally:
        driver.set_window_size(size["width"], size["height"])


def test_compare_two_runs_and_why_this_item_read_in_the_browser(server, browser, tmp_path, recviz_home):  # noqa: F811
    shots = shots_dir(tmp_path)
    recviz("train", "--dataset", ML100K, "--model", "itemknn")  # run 1
    recviz("train", "--dataset", ML100K, "--model", "itempop")  # run 2
    printed = json.loads(recviz("compare", "1", "2", "--json"))

    browser.get(f"{server}/results")
    wait_text(browser, "Compare two runs")
    pick(browser, "A", "#1 itemknn")
    pick(browser, "B", "#2 itempop")
    WebDriverWait(browser, 60).until(lambda d: table_with(d, "statistic"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in body
    assert printed["better"] == "#1 itemknn"
    verdict = printed["verdict"].replace("**", "")
    assert verdict.split(":")[0] in body  # "#1 itemknn is better than #2 itempop on NDCG@10 (…)"
    stats = {row["statistic"]: row["value"] for row in table_with(browser, "statistic")}
    assert stats["A wins / B wins / tie (users)"] == f"{printed['wins_a']} / {printed['wins_b']} / {printed['ties']}"
    assert stats["users paired"] == str(printed["users"]) == "943"
    assert f"wins on {printed['wins_a']} users" in body
    assert browser.execute_script("""return Array.from(document.querySelectorAll('.js-plotly-plot'))
        .some(p => p.textContent.includes('Per-user difference'))""")  # the histogram of per-user differences
    panel_shot(browser, "Compare two runs", shots / "compare.png")

    browser.get(f"{server}/recommendations")
    wait_text(browser, "Why these items")
    pick(browser, "Run", "#1 · itemknn")
    WebDriverWait(browser, 60).until(lambda d: table_with(d, "supported by"))
    user = browser.find_element(By.CSS_SELECTOR, "input[aria-label='Raw user id']").get_attribute("value")
    why = json.loads(recviz("recommend", "--run", "1", "--user", user, "--why", "--json"))["why"]
    body = browser.find_element(By.TAG_NAME, "body").text
    assert why["measure"] in body and "ItemKNN neighbours, with their similarity weights" in body
    shown = table_with(browser, "supported by")
    expected = [r for r in why["support"] if r["rank"] <= 10]
    assert len(shown) >= 5  # the grid's accessible table holds the rows drawn so far, in order
    assert [(r["rank"], r["item"], r["supported by"]) for r in shown] == \
        [(str(r["rank"]), str(r["item"]), str(r["supported by"])) for r in expected[:len(shown)]]
    assert all(float(r["weight"]) > 0 for r in shown if r["supported by"])  # the neighbours' similarity weights
    panel_shot(browser, "Why these items", shots / "why.png")
