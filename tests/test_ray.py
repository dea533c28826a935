"""The Ray backend as a user runs it: ``sweep run CONFIG --backend ray [--address HOST:PORT]`` from the CLI.

Each run writes its results on disk and they are read back and compared, table by table, with the
same config on the default threads backend: identical whatever the shard size, the number of
workers, a worker killed by its pid mid-task, a driver killed mid-run and resumed, or a cluster
joined by address.  Bad input (no Ray, nothing at the address, a wrong token, another Ray version)
exits 2 with one message and leaves no run folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs the ray extra: pip install -e '.[test,ray]'")

ROOT = Path(__file__).resolve().parents[1]
SYN = "data: {synthetic: {bars: 30000, timeframe: 5m, seed: 11}}\n"
GRID = (
    "strategies:\n"
    "  - type: ma_crossover\n    parameters: {fast: [3, 5, 8, 13], slow: [30, 50, 80]}\n"
    "  - type: momentum\n    parameters: {lookback_period: [5, 10, 20, 40]}\n"
    "classifiers:\n  - type: volatility\n    parameters: {vol_window: [10, 20]}\n"
    "event_tracing: [FILL, POSITION_OPEN, POSITION_CLOSE]\ntop_k: 3\nmin_trades: 1\n"
)  # 16 strategies x 2 classifiers, regimes, traced events through the bus
KILL_DATA = "data: {synthetic: {bars: 400000, timeframe: 1m, seed: 3}}\n"
KILL_GRID = (
    "strategies:\n  - type: ma_crossover\n    parameters: {fast: {start: 2, stop: 21}, slow: [40, 60, 90, 140]}\n"
)


def cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True, env=full, timeout=timeout
    )


def run_dir(results: Path, name: str) -> Path:
    (d,) = [p for p in (results / name).iterdir() if p.is_dir()]
    return d


def write(tmp_path: Path, name: str, body: str) -> Path:
    y = tmp_path / f"{name}.yaml"
    y.write_text(f"name: {name}\n{body}")
    return y


def assert_same_results(a: Path, b: Path) -> None:
    """Every table and luck statistic of run ``a`` equals run ``b``'s (rows in a canonical order)."""
    phases = json.loads((a / "manifest.json").read_text())["phase_order"]
    assert phases == json.loads((b / "manifest.json").read_text())["phase_order"]
    for phase in phases:
        tables = sorted(p.name for p in (a / phase).glob("*.parquet"))
        assert tables == sorted(p.name for p in (b / phase).glob("*.parquet")), phase
        for name in tables:
            x, y = pl.read_parquet(a / phase / name), pl.read_parquet(b / phase / name)
            x, y = (t.drop([c for c in ("seq",) if c in t.columns]) for t in (x, y))  # bus order within a shard
            assert x.columns == y.columns, (phase, name)
            if x.height:
                x, y = x.sort(x.columns), y.sort(y.columns)
            assert x.equals(y), f"{phase}/{name} differs"
        sa, sb = (json.loads((r / phase / "phase_summary.json").read_text()) for r in (a, b))
        for key in ("combinations", "rows", "ranking", "top", "overfitting", "windows", "buy_and_hold", "events"):
            assert sa.get(key) == sb.get(key), (phase, key)


def backend_of(d: Path) -> dict:
    return json.loads((d / "backend.json").read_text())


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[0]
    except OSError:
        return ""


def ray_pids() -> set[int]:
    return {int(d) for d in os.listdir("/proc") if d.isdigit() and title(int(d)).startswith(("ray::", "/"))}


@pytest.fixture
def reap():
    """Ray processes a killed driver leaves behind (its agents) are stopped after the test."""
    before = ray_pids()
    yield
    time.sleep(0.5)
    for pid in ray_pids() - before:
        if title(pid).startswith("ray::") or "ray/core/src" in title(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def threads_run(tmp_path_factory) -> Path:
    """The reference: the grid on the default threads backend, from the CLI."""
    tmp = tmp_path_factory.mktemp("threads")
    y = write(tmp, "grid", SYN + GRID)
    done = cli("run", y, "--results-dir", tmp / "out", "--quiet")
    assert done.returncode == 0, done.stderr
    return run_dir(tmp / "out", "grid")


@pytest.mark.parametrize(("shard", "workers"), [(7, 2), (40, 1), (13, 2)])
def test_ray_results_equal_threads_for_any_shard_size_and_worker_count(tmp_path, threads_run, shard, workers):
    y = write(tmp_path, "grid", SYN + GRID + f"backend: {{type: ray, shard_combinations: {shard}}}\n")
    done = cli("run", y, "--results-dir", tmp_path / "out", "--threads", workers)
    assert done.returncode == 0, done.stderr
    assert "a local Ray instance on 127.0.0.1" in done.stderr
    d = run_dir(tmp_path / "out", "grid")
    assert_same_results(threads_run, d)
    info = backend_of(d)
    n = pl.read_parquet(d / "backtest" / "metrics.parquet").height
    assert n == 32 and info["shards_run"] == -(-n // shard) and info["cpus"] == workers
    assert info["node_addresses"] == ["127.0.0.1"]  # a single-machine run listens on loopback only
    assert info["warm_up"] and all(w["compile_s"] >= 0 for w in info["warm_up"]) and info["workers"]
    man = json.loads((d / "manifest.json").read_text())
    assert man["status"] == "complete" and man["backend"]["type"] == "ray"


def test_numba_cache_off_compiles_in_private_folders(tmp_path, threads_run):
    y = write(tmp_path, "grid", SYN + GRID + "backend: {type: ray, shard_combinations: 16, numba_cache: false}\n")
    done = cli("run", y, "--results-dir", tmp_path / "out", "--threads", 2)
    assert done.returncode == 0, done.stderr
    d = run_dir(tmp_path / "out", "grid")
    assert_same_results(threads_run, d)
    info = backend_of(d)
    folders = {w["pid"]: w["numba_cache"] for w in info["workers"] + info["warm_up"]}
    assert folders and all(Path(f).name.startswith(f"sweep-numba-{pid}-") for pid, f in folders.items())


def _kill_first_shard_worker(proc: subprocess.Popen, deadline: float) -> int | None:
    """kill -9 the first worker process seen running a shard task (``ray::run_shard``) of the run."""
    while time.time() < deadline and proc.poll() is None:
        busy = [p for p in descendants(proc.pid) if title(p).startswith("ray::run_shard")]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            return busy[0]
        time.sleep(0.02)
    return None


def _start(y: Path, out: Path, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sweep", "run", str(y), "--results-dir", str(out), "--quiet", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_worker_killed_mid_task_is_retried_and_the_results_are_identical(tmp_path, reap):
    body = KILL_DATA + KILL_GRID + "top_k: 2\n"
    y = write(tmp_path, "kill", body + "backend: {type: ray, shard_combinations: 8, max_retries: 2}\n")
    cmd = [sys.executable, "-m", "sweep", "run", str(y), "--results-dir", str(tmp_path / "out"), "--threads", "2"]
    env = {**os.environ, "SWEEP_PROGRESS_EVERY": "0"}  # a progress line at every update (no terminal here)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = _kill_first_shard_worker(proc, time.time() + 180)
    out, err = proc.communicate(timeout=600)
    assert killed is not None, "no shard task was seen running"
    lines = [x for x in err.splitlines() if x.startswith("[kill] ") and ", shards " in x]
    assert lines and "ETA" in lines[0] and lines[-1].endswith("shards 10/10")  # across the cluster, per shard
    assert proc.returncode == 0, err
    d = run_dir(tmp_path / "out", "kill")
    info = backend_of(d)
    assert len(info["retries"]) == 1 and "WorkerCrashedError" in info["retries"][0]["error"]
    assert f"ray: shard {info['retries'][0]['shard']}" in err and "running it again (1/2)" in err
    ref = write(tmp_path, "kill_ref", body.replace("name: kill", ""))
    done = cli("run", ref, "--results-dir", tmp_path / "ref", "--quiet")
    assert done.returncode == 0, done.stderr
    assert_same_results(run_dir(tmp_path / "ref", "kill_ref"), d)


def test_out_of_retries_names_the_shard_and_a_resume_finishes_it(tmp_path, reap):
    body = KILL_DATA + KILL_GRID + "top_k: 2\n"
    y = write(tmp_path, "noretry", body + "backend: {type: ray, shard_combinations: 8, max_retries: 0}\n")
    proc = _start(y, tmp_path / "out", "--threads", "2")
    killed = _kill_first_shard_worker(proc, time.time() + 180)
    out, err = proc.communicate(timeout=600)
    assert killed is not None and proc.returncode == 2, err
    assert "error: shard " in err and "its task failed 1 time(s)" in err and "Traceback" not in err
    d = run_dir(tmp_path / "out", "noretry")
    assert json.loads((d / "manifest.json").read_text())["status"] == "failed"
    resumed = cli("run", y, "--results-dir", tmp_path / "out", "--resume", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((d / "manifest.json").read_text())["status"] == "complete"
    assert backend_of(d)["shards_run"] <= 10  # shards completed before the failure were not run again


def test_a_killed_driver_resumes_without_recomputing_completed_shards(tmp_path, reap):
    body = KILL_DATA + KILL_GRID + "top_k: 2\n"
    y = write(tmp_path, "driver", body + "backend: {type: ray, shard_combinations: 8}\n")
    proc = _start(y, tmp_path / "out", "--threads", "2")
    deadline = time.time() + 240
    markers: list = []
    while time.time() < deadline and proc.poll() is None:
        markers = list((tmp_path / "out" / "driver").glob("*/backtest/shards/*.done.json"))
        if len(markers) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before the driver could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    d = run_dir(tmp_path / "out", "driver")
    before = len(list((d / "backtest" / "shards").glob("*.done.json")))
    resumed = cli("run", y, "--results-dir", tmp_path / "out", "--resume", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert backend_of(d)["shards_run"] == 10 - before  # 80 combinations in shards of 8
    ref = write(tmp_path, "driver_ref", body)
    done = cli("run", ref, "--results-dir", tmp_path / "ref", "--quiet")
    assert done.returncode == 0, done.stderr
    assert_same_results(run_dir(tmp_path / "ref", "driver_ref"), d)


def test_ctrl_c_stops_the_cluster_run_promptly_and_it_resumes(tmp_path, reap):
    y = write(tmp_path, "intr", KILL_DATA + KILL_GRID + "backend: {type: ray, shard_combinations: 8}\n")
    proc = _start(y, tmp_path / "out", "--threads", "2")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if list((tmp_path / "out" / "intr").glob("*/backtest/shards/*.done.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    workers = [p for p in descendants(proc.pid) if title(p).startswith("ray::")]
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.perf_counter() - sent
    assert proc.returncode == 130 and "Traceback" not in err, err[-800:]
    assert took < 10, took  # tasks cancelled, the local instance stopped
    time.sleep(1.0)
    assert not [p for p in workers if title(p).startswith("ray::")], "workers outlived the interrupted run"
    d = run_dir(tmp_path / "out", "intr")
    assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    resumed = cli("run", y, "--results-dir", tmp_path / "out", "--resume", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((d / "manifest.json").read_text())["status"] == "complete"


def test_walk_forward_with_a_plugin_on_real_data(shared_data, tmp_path):
    body = (
        f"data: {{path: {shared_data / 'SPY_5m.csv'}}}\n"
        f"plugins: [{ROOT / 'examples' / 'my_strategies.py'}]\n"
        "workflow: {type: walk_forward, train: 6000, test: 3000}\n"
        "strategies:\n  - type: breadth\n    parameters: {n: [10, 20, 50], edge: [0.05, 0.1]}\n"
        "  - type: ma_crossover\n    parameters: {fast: [5, 10], slow: [40, 80]}\n"
        "top_k: 2\n"
    )
    y = write(tmp_path, "wf", body + "backend: {type: ray, shard_combinations: 3}\n")
    ray_done = cli("run", y, "--results-dir", tmp_path / "ray")
    assert ray_done.returncode == 0, ray_done.stderr
    ref = cli("run", y, "--results-dir", tmp_path / "threads", "--backend", "threads", "--quiet")
    assert ref.returncode == 0, ref.stderr
    assert_same_results(run_dir(tmp_path / "threads", "wf"), run_dir(tmp_path / "ray", "wf"))


# ------------------------------------------------------------------ a cluster joined by address
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A one-node cluster on loopback, started as the README says (`ray start --head`), stopped after."""
    port = _free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    exe = Path(sys.executable).with_name("ray")
    start = [str(exe), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    started = subprocess.run(start, capture_output=True, text=True, env=env, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(exe), "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_join_a_cluster_by_address_and_by_ray_address(tmp_path, threads_run, cluster):
    y = write(tmp_path, "grid", SYN + GRID + "backend: {shard_combinations: 9}\n")
    done = cli("run", y, "--results-dir", tmp_path / "a", "--address", cluster)
    assert done.returncode == 0, done.stderr
    assert f"the Ray cluster at {cluster}" in done.stderr
    assert_same_results(threads_run, run_dir(tmp_path / "a", "grid"))
    by_env = cli("run", y, "--results-dir", tmp_path / "b", "--backend", "ray", env={"RAY_ADDRESS": cluster})
    assert by_env.returncode == 0, by_env.stderr
    assert backend_of(run_dir(tmp_path / "b", "grid"))["address"] == cluster


def test_a_wrong_token_is_refused_with_the_fix(tmp_path, cluster):
    y = write(tmp_path, "tok", SYN + GRID)
    bad = cli("run", y, "--results-dir", tmp_path / "out", "--address", cluster, env={"RAY_AUTH_TOKEN": "0" * 32})
    assert bad.returncode == 2 and "authentication token" in bad.stderr and "ray get-auth-token" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "out").exists()


def test_a_version_mismatch_is_refused_with_the_fix(tmp_path, cluster):
    y = write(tmp_path, "ver", SYN + GRID)
    code = (
        "import sys, ray; ray.__version__ = '2.61.0'\n"  # this driver claims another Ray than the cluster's
        "from sweep.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["run", str(y), "--results-dir", str(tmp_path / "out"), "--address", cluster]
    bad = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "another Ray or Python version" in bad.stderr, bad.stderr
    assert "this driver: Ray 2.61.0" in bad.stderr and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ bad input, no cluster needed
def test_nothing_at_the_address(tmp_path):
    y = write(tmp_path, "none", SYN + GRID)
    bad = cli("run", y, "--results-dir", tmp_path / "out", "--address", f"127.0.0.1:{_free_port()}", timeout=60)
    assert bad.returncode == 2 and "nothing answers there" in bad.stderr and "ray start --head" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "out").exists()


def test_a_ray_outside_the_tested_range_is_refused(tmp_path):
    y = write(tmp_path, "range", SYN + GRID)
    code = "import sys, ray; ray.__version__ = '2.80.0'\nfrom sweep.cli import main; sys.exit(main(sys.argv[1:]))\n"
    args = ["run", str(y), "--results-dir", str(tmp_path / "out"), "--backend", "ray"]
    bad = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "ray 2.80.0: the Ray backend is tested with Ray 2.60" in bad.stderr, bad.stderr
    assert "sweep-engine[ray]" in bad.stderr and not (tmp_path / "out").exists()


def test_ray_not_installed(tmp_path):
    y = write(tmp_path, "noray", SYN + GRID)
    code = "import sys; sys.modules['ray'] = None\nfrom sweep.cli import main; sys.exit(main(sys.argv[1:]))\n"
    args = ["run", str(y), "--results-dir", str(tmp_path / "out"), "--backend", "ray"]
    bad = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Ray is not installed" in bad.stderr and "sweep-engine[ray]" in bad.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "args", "said"),
    [
        ("backend: {type: ray, address: 'ray://head:10001'}\n", [], "Ray Client addresses (ray://) are not supported"),
        ("backend: {type: ray, cpus_per_task: 0}\n", [], "backend.cpus_per_task: expected a whole number >= 1"),
        ("backend: {type: threads, address: '1.2.3.4:6379'}\n", [], "backend.address: an address needs type: ray"),
        ("", ["--backend", "ray", "--engine", "reference"], "the reference engine runs in one process"),
        ("workflow: signal_generation\n", ["--backend", "ray"], "signal_generation runs on the driver"),
        ("", ["--address", "nohost"], "--address: expected HOST:PORT of the Ray head"),
    ],
)
def test_bad_backend_settings(tmp_path, extra, args, said):
    y = write(tmp_path, "bad", SYN + GRID + extra)
    bad = cli("run", y, "--results-dir", tmp_path / "out", *args, timeout=120)
    assert bad.returncode == 2 and said in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "out").exists()
