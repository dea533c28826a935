"""Reliability under attack: kills at every kind of moment, one writer per folder, containment, file-system
faults, corrupt files and signals - nothing lost, nothing half-written, a clear message and exit 2 (or 130/143)."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import sweep
from sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = (
    "name: crash\n"
    "data: {synthetic: {bars: 6000, timeframe: 5m, seed: 3}}\n"
    "workflow: {type: train_test, split: 0.6}\n"
    "event_tracing: [FILL, POSITION_OPEN, POSITION_CLOSE]\n"
    "strategies:\n  - type: ma_crossover\n    parameters: {fast: [3, 5, 8, 13], slow: [30, 60, 90]}\n"
    "classifiers:\n  - type: trend\n    parameters: {period: [20, 40]}\n"
    "top_k: 3\n"
)
# many small shards and trace parts, so every kind of file is written several times
ENV = {**os.environ, "SWEEP_SHARD_WORK": "20000", "SWEEP_MIN_SHARD": "4"}
TABLES = ("metrics", "regimes", "trades", "equity", "events", "block_returns")


def _cmd(cfg: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "sweep", "run", str(cfg), "--results-dir", str(out), "--quiet", *extra]


def _tables(run_dir: Path) -> dict:
    out = {}
    for phase in ("train", "test"):
        for t in TABLES:
            p = run_dir / phase / f"{t}.parquet"
            if p.exists():
                f = pl.read_parquet(p)
                keys = [
                    c for c in ("combo_id", "window", "block", "bar", "seq", "event", "regime_index") if c in f.columns
                ]
                out[f"{phase}/{t}"] = f.sort(keys) if keys else f
        s = json.loads((run_dir / phase / "phase_summary.json").read_text())
        out[f"{phase}/luck"] = [(b["sentence"], b["pbo"], b["spa_p"]) for b in s.get("overfitting", [])]
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pl.DataFrame):
            assert a[k].equals(b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, and the numbered checkpoints (writes, renames, clean-up steps) it passes."""
    tmp = tmp_path_factory.mktemp("crash")
    cfg = tmp / "crash.yaml"
    cfg.write_text(CONFIG)
    log = tmp / "checkpoints.txt"
    proc = subprocess.run(_cmd(cfg, tmp / "ref"), env={**ENV, "SWEEP_CHECKPOINT_LOG": str(log)}, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    points = [line.split(" ", 1) for line in log.read_text().splitlines()]
    return cfg, _tables(next((tmp / "ref" / "crash").iterdir())), points


def test_kill_at_any_moment_loses_nothing(reference, tmp_path):
    cfg, want, points = reference
    labels = [label for _, label in points]
    assert any("not yet renamed" in x for x in labels) and any(x.startswith("removed") for x in labels)
    rng = random.Random(11)
    # inside a write, after a rename, and inside the clean-up of each phase - plus seeded others
    picks = {
        next(i for i, x in enumerate(labels) if "not yet renamed" in x and ".done." in x),
        next(i for i, x in enumerate(labels) if "events.parquet (not yet renamed)" in x),
        next(i for i, x in enumerate(labels) if x.startswith("removed")),
        max(i for i, x in enumerate(labels) if x.startswith("removed")) - 1,
        len(labels) - 1,
        *rng.sample(range(len(labels)), 5),
    }
    for k in sorted(picks):
        out = tmp_path / f"kill{k}"
        killed = subprocess.run(_cmd(cfg, out), env={**ENV, "SWEEP_KILL_AT": str(k + 1)}, capture_output=True)
        assert killed.returncode == -signal.SIGKILL, (k, labels[k], killed.stderr.decode()[-400:])
        resumed = subprocess.run(_cmd(cfg, out, "--resume"), env=ENV, capture_output=True, text=True)
        assert resumed.returncode == 0, (k, labels[k], resumed.stderr[-600:])
        run_dir = next((out / "crash").iterdir())
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete", labels[k]
        _assert_same(_tables(run_dir), want)
        assert not list(run_dir.rglob("*.tmp")), labels[k]
        assert not list(run_dir.rglob("shards")), labels[k]


def test_resume_with_another_shard_layout_is_refused(reference, tmp_path):
    cfg, _, points = reference
    out = tmp_path / "layout"
    middle = next(i for i, (_, x) in enumerate(points) if ".done." in x and "renamed" in x and "not yet" not in x)
    subprocess.run(_cmd(cfg, out), env={**ENV, "SWEEP_KILL_AT": str(middle + 2)}, capture_output=True)
    other = {**ENV, "SWEEP_SHARD_WORK": "50000"}
    resumed = subprocess.run(_cmd(cfg, out, "--resume"), env=other, capture_output=True, text=True)
    assert resumed.returncode == 2 and "shard settings" in resumed.stderr and "Traceback" not in resumed.stderr
    again = subprocess.run(_cmd(cfg, out, "--resume"), env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_one_writer_per_run_folder(reference, tmp_path):
    cfg, _, points = reference
    out = tmp_path / "locked"
    subprocess.run(_cmd(cfg, out), env={**ENV, "SWEEP_KILL_AT": str(len(points) // 2)}, capture_output=True)
    run_dir = next((out / "crash").iterdir())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from sweep.results import RunStore; "
            "s = RunStore(sys.argv[1]); s.lock(); print('locked', flush=True); time.sleep(60)",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        second = subprocess.run(_cmd(cfg, out, "--resume"), env=ENV, capture_output=True, text=True)
        assert second.returncode == 2 and f"pid {holder.pid}" in second.stderr, second.stderr
        assert "being written by" in second.stderr and "Traceback" not in second.stderr
    finally:
        holder.kill()
        holder.wait()
    # the lock went with the process: now the resume works
    assert subprocess.run(_cmd(cfg, out, "--resume"), env=ENV, capture_output=True).returncode == 0


def _running(shards: Path, resumed: bool) -> bool:
    """A fresh run has written a shard; a resumed one has marked itself running again."""
    if not resumed:
        return bool(list(shards.glob("*/optimize/shards/*.done.json")))
    return json.loads((next(shards.iterdir()) / "manifest.json").read_text())["status"] == "running"


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_promptly_and_resume(tmp_path, sig, code):
    cfg = tmp_path / "sig.yaml"
    cfg.write_text(
        "name: sig\ndata: {synthetic: {bars: 400000, timeframe: 1m, seed: 5}}\nworkflow: optimization\n"
        "strategies:\n  - type: ma_crossover\n"
        "    parameters: {fast: {start: 2, stop: 40}, slow: {start: 100, stop: 300, step: 10}}\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "SWEEP_SHARD_WORK": "20000000", "SWEEP_MIN_SHARD": "16"}
    rng = random.Random(int(sig))
    for attempt in range(2):  # interrupt the run, then interrupt its resume
        extra = ("--resume",) if attempt else ()
        proc = subprocess.Popen(_cmd(cfg, out, *extra), env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        shards = out / "sig"
        deadline = time.time() + 60

        while time.time() < deadline and not _running(shards, resumed=bool(attempt)):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        sent = time.perf_counter()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        took = time.perf_counter() - sent
        err = err.decode()
        assert proc.returncode == code, (attempt, proc.returncode, err[-500:])
        assert took < 5.0 and "panic" not in err.lower() and "Traceback" not in err, (took, err[-500:])
        (run_dir,) = shards.iterdir()
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    resumed = subprocess.run(_cmd(cfg, out, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-500:]
    fresh = sweep.run(str(cfg), results_dir=tmp_path / "fresh", progress=False)
    got = sweep.open_results(next((out / "sig").iterdir()))
    assert got.metrics.sort("combo_id").equals(fresh.metrics.sort("combo_id"))


# ------------------------------------------------------------------ file-system faults


def _small(tmp_path: Path, name: str = "fs") -> Path:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        f"name: {name}\ndata: {{synthetic: {{bars: 3000, timeframe: 5m}}}}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [30, 60]}\n"
    )
    return cfg


def test_results_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    assert main(["run", str(_small(tmp_path)), "--results-dir", str(f), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a_file" in err and "not a folder" in err and "Fix:" in err and "Traceback" not in err


def test_path_too_long_and_nul(tmp_path, capsys):
    assert main(["run", str(_small(tmp_path)), "--results-dir", str(tmp_path / ("x" * 300)), "--quiet"]) == 2
    assert "too long" in capsys.readouterr().err
    assert main(["run", str(_small(tmp_path)), "--results-dir", "res\x00ults", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "NUL" in err and "--results-dir" in err and "Traceback" not in err


def _mount_tmpfs(path: Path, opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_read_only_results_folder(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "size=1m,ro"):
        try:
            code = main(["run", str(_small(tmp_path)), "--results-dir", str(ro), "--quiet"])
        finally:
            _umount(ro)
    else:  # not root or no mount: the OS error, simulated where the folder is created
        real = Path.mkdir

        def refuse(self, *a, **k):
            if str(self).startswith(str(ro)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", refuse)
        code = main(["run", str(_small(tmp_path)), "--results-dir", str(ro), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "read-only" in err and "--results-dir" in err and "Traceback" not in err


def test_disk_full_keeps_what_was_written_and_resumes(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "full.yaml"
    cfg.write_text(CONFIG.replace("name: crash", "name: full"))
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "size=160k")  # the run needs about 400 KiB
    try:
        if mounted:
            code = main(["run", str(cfg), "--results-dir", str(disk), "--quiet"])
        else:  # a simulated full disk: the 40th atomic write fails with ENOSPC
            import sweep.results as results

            real, calls = results.os.replace, {"n": 0}

            def full(a, b):
                calls["n"] += 1
                if calls["n"] == 40:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(b))
                return real(a, b)

            monkeypatch.setattr(results.os, "replace", full)
            code = main(["run", str(cfg), "--results-dir", str(disk), "--quiet"])
            monkeypatch.setattr(results.os, "replace", real)
        err = capsys.readouterr().err
        assert code == 2 and "no space left" in err and "--resume" in err and "Traceback" not in err
        run_dir = next((disk / "full").iterdir())
        assert not list(run_dir.rglob("*.tmp"))
        if mounted:  # make room, as the user would
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert main(["run", str(cfg), "--results-dir", str(disk), "--quiet", "--resume"]) == 0
        fresh = sweep.run(str(cfg), results_dir=tmp_path / "fresh", progress=False)
        got = sweep.open_results(run_dir)
        for phase in ("train", "test"):
            assert got.table("metrics", phase).sort("combo_id").equals(fresh.table("metrics", phase).sort("combo_id"))
    finally:
        if mounted:
            _umount(disk)


def test_corrupt_manifest_and_parquet(tmp_path, capsys):
    cfg = _small(tmp_path, "corrupt")
    assert main(["run", str(cfg), "--results-dir", str(tmp_path), "--quiet"]) == 0
    run_dir = next((tmp_path / "corrupt").iterdir())
    metrics = run_dir / "backtest" / "metrics.parquet"
    metrics.write_bytes(metrics.read_bytes()[:100])
    assert main(["results", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "metrics.parquet" in err and "cannot read" in err and "Traceback" not in err
    (run_dir / "manifest.json").write_text("{not json")
    assert main(["results", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "manifest" in err and "not valid JSON" in err and "Traceback" not in err
    # and a new run of the same config is not disturbed by the damaged folder
    assert main(["run", str(cfg), "--results-dir", str(tmp_path), "--quiet"]) == 0


def test_unfinished_results_suggest_the_exact_command(tmp_path, capsys, monkeypatch):
    import sweep.runner as runner

    cfg = _small(tmp_path, "unfinished")
    monkeypatch.setattr(runner, "write_phase", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        sweep.run(str(cfg), results_dir=tmp_path / "deep" / "res", progress=False)
    monkeypatch.undo()
    run_dir = next((tmp_path / "deep" / "res" / "unfinished").iterdir())
    assert main(["results", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"sweep run {cfg} --results-dir {tmp_path / 'deep' / 'res'} --resume" in err


# ------------------------------------------------------------------ containment


def test_symbols_never_escape_the_results_folder(tmp_path):
    from containers.synthetic import generate

    cols = generate(3000, seed=1, timeframe="5m")
    ts = cols.pop("timestamp")
    cols.pop("regime")
    frame = pl.DataFrame({"timestamp": pl.Series(ts).cast(pl.Datetime("ns", "UTC")), **cols})
    frame.with_columns(pl.lit("../../escaped/x").alias("symbol")).write_csv(tmp_path / "bars.csv")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: contained\ndata: {path: bars.csv}\n"
        "strategies:\n  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [30]}\n"
    )
    before = set(tmp_path.parent.iterdir())
    env = {**ENV, "SWEEP_MIN_SHARD": "1", "SWEEP_SHARD_WORK": "1000"}  # shard files named after the symbol
    proc = subprocess.run(_cmd(cfg, tmp_path / "res"), env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert set(tmp_path.parent.iterdir()) == before and not (tmp_path / "escaped").exists()
    m = sweep.open_results(tmp_path / "res" / "contained").metrics
    assert set(m["symbol"]) == {"../../escaped/x"}


def test_one_progress_bar_and_it_reaches_100(tmp_path, monkeypatch):
    import io

    import tqdm

    bars = []

    class Counted(tqdm.tqdm):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            bars.append(self)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(tqdm, "tqdm", Counted)
    monkeypatch.setattr(sys, "stderr", Terminal())
    cfg = {
        "name": "bar",
        "data": {"synthetic": {"bars": 4000, "timeframe": "5m"}},
        "workflow": {"type": "monte_carlo", "samples": 50, "holdout": 0.3},
        "strategies": [{"type": "ma_crossover", "parameters": {"fast": [5, 10], "slow": [30, 60]}}],
    }
    sweep.run(cfg, results_dir=tmp_path, progress=True)
    assert len(bars) == 1 and bars[0].n == bars[0].total > 0
    assert "100%" in sys.stderr.getvalue()


def test_a_plugin_raising_late_in_the_run_is_named_not_a_traceback(tmp_path, capsys):
    cfg = tmp_path / "late.yaml"
    cfg.write_text(
        f"name: late\nplugins: [{ROOT / 'tests' / 'plugins' / 'late_raiser.py'}]\n"
        "data: {synthetic: {bars: 60000, timeframe: 1m, seed: 7, drift: 0.8}}\nstrategies:\n  - type: raises_late\n"
    )
    # the look-ahead guard calls plugin strategies at the last 20,000 bars too: refused before any folder exists
    assert main(["run", str(cfg), "--results-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "raises_late" in err and "price too high" in err and "Traceback" not in err
    assert not (tmp_path / "late").exists()
    # without the guard the kernel meets it: named, with its bar, and the run is marked failed
    args = ["run", str(cfg), "--results-dir", str(tmp_path), "--quiet", "--no-lookahead-check"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "late_raiser.raises_late: raised inside the run" in err and "at bar 46,252" in err
    assert "price too high" in err and "Traceback" not in err
    run_dir = next((tmp_path / "late").iterdir())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
