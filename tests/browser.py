"""Headless Chromium for the report tests: measure a page as a reader's browser lays it out
(no driver needed: a script added to a copy of the page writes its measurements into the DOM,
which `--dump-dom` prints), and take a screenshot of its first screen."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

PROBE = """
<script>
window.addEventListener("load", () => {
  const ids = new Set([...document.querySelectorAll("[id]")].map(e => e.id));
  const tocLinks = [...document.querySelectorAll("nav.toc a")].map(a => a.getAttribute("href"));
  const result = {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    pageWidth: document.documentElement.getBoundingClientRect().width,
    // content wider than the page body (what a scroll container holds is clipped, so not counted)
    bodyOverflow: document.body.scrollWidth - document.body.clientWidth,
    images: [...document.images].map(i => ({alt: i.alt, naturalWidth: i.naturalWidth,
                                             complete: i.complete})),
    tocLinks: tocLinks,
    unresolved: tocLinks.filter(h => !h.startsWith("#") || !ids.has(h.slice(1))),
    scorecardRows: document.querySelectorAll("tr.scorecard-row").length,
    counts: Object.fromEntries([...document.querySelectorAll("#scorecard-counts [data-verdict]")]
                               .map(e => [e.dataset.verdict, Number(e.querySelector("strong").textContent)])),
    claimVerdicts: [...document.querySelectorAll("tr.claim-row [data-claim-verdict]")]
        .map(e => e.dataset.claimVerdict),
    wideTablesOutsideScroll: [...document.querySelectorAll("table")]
        .filter(t => !t.closest(".table-scroll")).length,
  };
  const pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium binary, or skip the test saying why (never a silent pass)."""
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "); install Debian's "
                    "`chromium` (.ci/run does) to run the report's browser test")
    return path


def _chromium(chromium: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-dev-shm-usage", "--no-first-run", "--allow-file-access-from-files"]
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


# Headless Chromium's window is at least 500 px wide: a phone's 390 px is the page's own width inside
# a 500 px window (where the page's phone media queries, max-width 600 px, already apply).
MIN_WINDOW = 500


def inspect_page(chromium: str, html: Path, width: int, scratch: Path) -> dict:
    """Layout facts of `html` at a window `width` px wide (see PROBE)."""
    probe = scratch / f"probe_{width}_{html.name}"
    text = html.read_text()
    narrow = f"<style>html {{ width: {width}px; }}</style>" if width < MIN_WINDOW else ""
    probe.write_text(text.replace("</body>", narrow + PROBE + "</body>") if "</body>" in text
                     else text + narrow + PROBE)
    result = _chromium(chromium, f"--window-size={max(width, MIN_WINDOW)},1000", "--virtual-time-budget=10000",
                       "--dump-dom", probe.resolve().as_uri())
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"Chromium printed no measurements (rc {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def screenshot(chromium: str, html: Path, png: Path, width: int = 1280, height: int = 1000) -> Path:
    """The first screen of `html` as a reader sees it, written to `png`."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _chromium(chromium, f"--window-size={width},{height}", "--virtual-time-budget=5000",
              f"--screenshot={png.resolve()}", html.resolve().as_uri())
    assert png.is_file() and png.stat().st_size > 1000, f"no screenshot written to {png}"
    return png


def check_report(chromium: str, html: Path, scratch: Path, expected_rows: int) -> list[dict]:
    """The report's browser assertions at 390 (a phone), 1024, 1280 and 1920 px: no horizontal overflow of the
    page, every image decoded, every table-of-contents link resolving to a section, every table in a
    scrollable box, the scorecard with `expected_rows` rows whose verdict counts add up to them, and
    every one of the paper's claims with a computed verdict."""
    from approxeq.report.claims import CLAIMS, VERDICTS

    pages = []
    for width in (390, 1024, 1280, 1920):
        page = inspect_page(chromium, html, width, scratch)
        assert page["pageWidth"] == width, (page["pageWidth"], page["innerWidth"])
        assert page["scrollWidth"] <= max(width, MIN_WINDOW), f"page overflows at {width} px: {page['scrollWidth']}"
        assert page["bodyOverflow"] <= 0, f"content overflows the page at {width} px by {page['bodyOverflow']} px"
        undecoded = [i["alt"] for i in page["images"] if not i["naturalWidth"]]
        assert page["images"] and not undecoded, f"images not decoded: {undecoded}"
        assert page["tocLinks"] and not page["unresolved"], f"contents links to nowhere: {page['unresolved']}"
        assert page["wideTablesOutsideScroll"] == 0
        assert page["scorecardRows"] == expected_rows, (page["scorecardRows"], expected_rows)
        assert sum(page["counts"].values()) == expected_rows, page["counts"]
        assert len(page["claimVerdicts"]) == len(CLAIMS) and set(page["claimVerdicts"]) <= set(VERDICTS)
        pages.append(page)
    return pages
