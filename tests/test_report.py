"""The HTML report, opened in a real headless browser: it renders every chart, logs no error, asks the network
for nothing, and shows the numbers the Parquet files hold.  One report per workflow, from the CLI on real data."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from sweep.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
(function () { const ce = console.error; console.error = function (...a) { window.__errors.push(a.join(' '));
  ce.apply(console, a); }; })();
window.addEventListener('load', () => setTimeout(() => {
  const charts = [...document.querySelectorAll('.chart')].map(c => ({
    name: c.dataset.chart, svgs: c.querySelectorAll('svg.main-svg').length,
    marks: c.querySelectorAll('path, rect, text').length}));
  document.body.setAttribute('data-probe', JSON.stringify({errors: window.__errors, charts: charts}));
}, 300));
</script>"""

GRID = (
    "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10, 20], slow: [40, 80]}\n"
    "  - type: momentum\n    parameters: {lookback_period: [10, 20]}\n"
    "classifiers:\n  - type: trend\n    parameters: {period: [20]}\ntop_k: 3\n"
)
WORKFLOWS = {
    "backtest": "workflow: backtest\n",
    "optimization": "workflow: optimization\n",
    "train_test": "workflow: {type: train_test, split: 0.7}\n",
    "walk_forward": "workflow: {type: walk_forward, train: 6000, test: 3000}\n",
    "monte_carlo": "workflow: {type: monte_carlo, samples: 200}\n",
    "signal_generation": "workflow: signal_generation\n",
}


@pytest.fixture
def data_yaml() -> str:
    """Real SPY 5-minute bars when ../shared/data has them, else the built-in sample (the browser checks run)."""
    from conftest import SHARED_DATA

    spy = SHARED_DATA / "SPY_5m.csv"
    return f"{{path: {spy}}}" if spy.exists() else "{synthetic: {bars: 20000, timeframe: 5m, seed: 4}}"


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser (chromium) found: `apt-get install chromium` (the CI script installs it)")


def open_page(browser: str, page: Path, tmp: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` (an instrumented copy) headless: what the probe saw, and the network requests it made."""
    copy = tmp / f"probe-{page.name}"
    text = page.read_text(encoding="utf-8")
    copy.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    net = tmp / f"{page.stem}.netlog.json"
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp / 'profile'}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-extensions",
        "--virtual-time-budget=20000",
    ]
    dom = subprocess.run(
        [browser, *flags, f"--log-net-log={net}", "--dump-dom", copy.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    if screenshot is not None:
        subprocess.run(
            [browser, *flags, "--window-size=1300,6000", f"--screenshot={screenshot}", page.as_uri()],
            capture_output=True,
            timeout=180,
        )
    m = re.search(r'data-probe="([^"]*)"', dom)
    probe = (
        json.loads(html.unescape(m.group(1))) if m else {"errors": ["the page never finished loading"], "charts": []}
    )
    d = json.loads(net.read_text()) if net.exists() else {"events": [], "constants": {"logEventTypes": {}}}
    kinds = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    asked = [
        p["url"]
        for e in d["events"]
        if kinds.get(e.get("type")) == "URL_REQUEST_START_JOB"
        and (p := e.get("params") or {}).get("url")
        and p.get("initiator") != "not an origin"  # the browser's own background requests
        and not p["url"].startswith(("file:", "data:", "blob:", "chrome"))
    ]
    probe["requests"] = asked
    return probe


def _artifact(path: Path) -> None:
    folder = os.environ.get("SWEEP_TEST_ARTIFACTS")
    if folder and path.exists():
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def test_the_probe_catches_errors_and_requests(browser, tmp_path):
    """The checks below can fail: a page that throws and one that fetches are caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><head></head><body><div class='chart' data-chart='x'></div>"
        "<img src='http://example.invalid/pixel.png'><script>undefined_function_call();</script></body></html>"
    )
    seen = open_page(browser, bad, tmp_path)
    assert any("undefined_function_call" in e for e in seen["errors"])
    assert any("example.invalid" in u for u in seen["requests"])
    assert seen["charts"] == [{"name": "x", "svgs": 0, "marks": 0}]


@pytest.mark.parametrize("wf", sorted(WORKFLOWS))
def test_report_of_each_workflow_in_a_browser(browser, data_yaml, tmp_path, capsys, wf):
    y = tmp_path / f"{wf}.yaml"
    y.write_text(f"name: {wf}\ndata: {data_yaml}\n" + WORKFLOWS[wf] + GRID)
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet", "--report"]) == 0
    out = capsys.readouterr().out
    run_dir = next((tmp_path / wf).iterdir())
    page = run_dir / "report.html"
    assert f"report: {page}" in out and page.stat().st_size < 10 * 2**20
    shot = tmp_path / f"report-{wf}.png"
    seen = open_page(browser, page, tmp_path, shot)
    _artifact(shot)
    assert seen["errors"] == [] and seen["requests"] == []
    assert seen["charts"], "no chart in the report"
    empty = [c["name"] for c in seen["charts"] if c["svgs"] == 0 or c["marks"] < 5]
    assert not empty, f"charts without content: {empty}"
    assert shot.exists() and shot.stat().st_size > 10_000
    text = page.read_text(encoding="utf-8")
    assert "Overview" in text and "Config" in text
    names = {c["name"].split("-")[0] for c in seen["charts"]}
    expected = {
        "backtest": {"heatmap", "profile", "equity", "trades", "pnl", "regimes", "logits"},
        "optimization": {"heatmap", "equity", "trades", "logits"},
        "train_test": {"heatmap", "train", "equity"},
        "walk_forward": {"heatmap", "train", "stitched"},
        "monte_carlo": {"heatmap", "bootstrap"},
        "signal_generation": {"signals"},
    }[wf]
    assert expected <= names, names
    # the ranking table shows the metrics.parquet values of the same combinations
    phase = json.loads((run_dir / "manifest.json").read_text())["phase_order"][0]
    ranking = re.search(r'<table class="ranking">(.*?)</table>', text, flags=re.S)
    if wf == "signal_generation":
        assert ranking is None and "stored signals" in text
        return
    metrics = pl.read_parquet(run_dir / phase / "metrics.parquet")
    rows = [
        dict(re.findall(r'data-col="([^"]+)" data-value="([^"]*)"', r))
        for r in re.findall(r"<tr>(.*?)</tr>", ranking.group(1), flags=re.S)
    ]
    rows = [r for r in rows if r]  # (the header row has no values)
    assert rows
    for cells in rows:
        keys = pl.col("combo_id") == int(cells["combo_id"])
        if "window" in cells:
            keys &= pl.col("window") == int(cells["window"])
        want = metrics.filter(keys).row(0, named=True)
        for col in ("sharpe", "total_return", "max_drawdown", "trades"):
            got = html.unescape(cells[col])
            assert (float(got) if got not in ("None", "nan") else None) == (
                want[col] if want[col] == want[col] else None
            ), (col, got, want[col])


def test_report_command_and_bad_input(browser, data_yaml, tmp_path, capsys):
    y = tmp_path / "r.yaml"
    y.write_text(f"name: r\ndata: {data_yaml}\n" + GRID)
    assert main(["run", str(y), "--results-dir", str(tmp_path), "--quiet"]) == 0
    out_file = tmp_path / "elsewhere" / "mine.html"
    assert main(["report", str(tmp_path / "r"), "-o", str(out_file), "--agg", "median"]) == 0
    assert "(median over the other parameters" in out_file.read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "r"), "--agg", "sum"]) == 2
    assert "--agg: expected one of max, median, mean, min" in capsys.readouterr().err
    (tmp_path / "nothing").mkdir()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no results in" in capsys.readouterr().err
    # a failed run: what exists is shown, and the report says what is missing
    run_dir = next((tmp_path / "r").iterdir())
    man = json.loads((run_dir / "manifest.json").read_text())
    man["status"], man["error"] = "failed", "RuntimeError: disk on fire"
    man["phases"] = {"backtest": "running"}
    (run_dir / "manifest.json").write_text(json.dumps(man))
    assert main(["report", str(run_dir)]) == 0
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "This run is failed" in text and "Missing phases: backtest" in text and "disk on fire" in text
    seen = open_page(browser, run_dir / "report.html", tmp_path)
    assert seen["errors"] == [] and seen["requests"] == []
