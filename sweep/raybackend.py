"""The Ray backend: a sweep's shards run as Ray core tasks, on one machine or a cluster.

The driver (``sweep run``) stays where it is and writes every result, exactly as with threads:
the bars and each feature block go into the object store once (``ray.put``), every shard of
combinations becomes a task (``sweep.rayworker.run_shard``) that returns its metrics, block returns
and events, and the driver writes each shard as it completes - so a killed driver resumes from its
completed shards and a result never depends on where or in which order shards ran.  A task whose
worker dies is submitted again (``max_retries`` times, then an error names the shard).

Without an address a local instance starts on loopback and stops with the run.  With one
(``--address HOST:PORT``, ``backend.address`` or ``RAY_ADDRESS``) the driver joins that cluster;
token authentication uses the cluster's token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``).  See README "Scale out on Ray".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from services import limits
from services.errors import BackendError

from .config_backend import BackendConfig, check_address
from .interrupts import STOP
from .manifest import raw_config
from .rayworker import CACHE_ENV, Job, plan_key, preload, run_shard, warm_node

TESTED = ((2, 60), (2, 70))  # Ray versions this backend is tested with: [2.60, 2.70)
SHARDS_PER_WINDOW = 64  # default split of a window's combinations (fixed: a resumed run finds the same shards)
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray uses 127.0.0.1 as the node address


def _retryable():
    import ray.exceptions as rx

    names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OutOfMemoryError", "RaySystemError")
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def _use_loopback():
    """Make Ray (this process and what it starts) use 127.0.0.1 as the node address: nothing listens outside.

    Returns the function that puts this process back as it was (a later ray.init elsewhere is not affected).
    """
    import ray._private.ray_constants as rc

    before_env, before_flag = os.environ.get(_LOOPBACK_ENV), rc.ENABLE_RAY_CLUSTER
    os.environ[_LOOPBACK_ENV] = "0"
    rc.ENABLE_RAY_CLUSTER = False

    def restore() -> None:
        rc.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = before_env

    return restore


@contextlib.contextmanager
def _captured_stderr():
    """Ray's start-up chatter (C++ and Python) goes to a file; the caller gets its text on failure."""
    box: list[str] = []
    tmp = tempfile.TemporaryFile(mode="w+")
    saved = os.dup(2)
    os.dup2(tmp.fileno(), 2)
    try:
        yield box
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        tmp.seek(0)
        box.append(tmp.read())
        tmp.close()


def _version_check(ray) -> None:
    try:
        v = tuple(int(x) for x in ray.__version__.split(".")[:2])
    except ValueError:
        return
    if not TESTED[0] <= v < TESTED[1]:
        raise BackendError(
            f"ray {ray.__version__}",
            f"the Ray backend is tested with Ray {TESTED[0][0]}.{TESTED[0][1]} up to (not including) "
            f"{TESTED[1][0]}.{TESTED[1][1]}",
            fix="pip install 'sweep-engine[ray]' (it pins the tested range); every node of a cluster needs the same",
        )


def _probe(address: str) -> None:
    """A GCS port that does not answer fails here in seconds (ray.init would retry for minutes)."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise BackendError(
            f"Ray cluster at {address}",
            f"nothing answers there ({exc.strerror or exc})",
            fix=f"start the head there with `ray start --head --port {port}`, check the address and firewall - "
            "or leave out --address (and RAY_ADDRESS) to run on a local Ray instance",
        ) from None


def _connect_error(address: str, exc: BaseException, said: str) -> BackendError:
    chain, e = [], exc
    while e is not None:
        chain.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    text = "\n".join(chain) + "\n" + said
    if "Version mismatch" in text:
        tail = text[text.index("Version mismatch") :]
        ray_v, py_v = re.findall(r"Ray: (\S+)", tail)[:2], re.findall(r"Python: (\S+)", tail)[:2]
        seen = (
            f"cluster: Ray {ray_v[0]}, Python {py_v[0]}; this driver: Ray {ray_v[1]}, Python {py_v[1]}"
            if len(ray_v) == 2 and len(py_v) == 2
            else tail.splitlines()[0]
        )
        return BackendError(
            f"Ray cluster at {address}",
            f"the cluster runs another Ray or Python version than this driver ({seen})",
            fix="install the cluster's Ray version here (pip install 'ray==X.Y.Z') with the same Python, or "
            "restart the cluster with this one; every node and the driver need the same versions",
        )
    if "InvalidAuthToken" in text or "AuthenticationError" in text or "Unauthenticated" in text:
        return BackendError(
            f"Ray cluster at {address}",
            "the cluster refused this driver's authentication token (missing or not the cluster's)",
            fix="copy the head node's token here: `ray get-auth-token` on the head prints it; put it in "
            "~/.ray/auth_token or set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH)",
        )
    last = chain[0] if chain else str(exc)
    return BackendError(
        f"Ray cluster at {address}",
        f"cannot join it ({last.splitlines()[0][:200]})",
        fix="check that `ray status --address " + address + "` works from this machine",
    )


@contextlib.contextmanager
def _gcs_retries(n: int):
    """Ray's GCS connection attempts (a second apart) while joining, unless the user set their own."""
    key = "RAY_gcs_server_port_wait_time_s"
    mine = key not in os.environ
    if mine:
        os.environ[key] = str(n)
    try:
        yield
    finally:
        if mine:
            os.environ.pop(key, None)


def _enable_token_auth() -> None:
    """Send the cluster token when one is available (Ray only does this by itself for address=auto)."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class RayBackend:
    """A connection to Ray for one run: object-store copies, warm nodes, shard tasks with retries."""

    def __init__(self, ray, settings: BackendConfig, address: str | None, local: bool, log, owned: bool = True):
        self.ray, self.settings, self.address, self.local, self.log = ray, settings, address, local, log
        self.owned = owned  # this run connected (or started the instance): it disconnects at the end
        self.restore = lambda: None  # undoes the loopback settings at the end
        self.refs: dict = {}  # object-store copies: universes and feature blocks, put once
        self.warm: dict = {}  # node id -> warm-up result
        self.workers: dict = {}  # pid -> what its first shard cost
        self.retries: list[dict] = []
        self.shards = 0
        self.put_bytes = 0
        self.driver_s = 0.0  # the driver's time on received shards (events, files)
        self.task_s = 0.0  # the tasks' own seconds, summed
        self.config: dict = {}  # set by bind
        self.key = ""
        opts = {"num_cpus": settings.cpus_per_task, "max_retries": 0}  # retries are ours: counted and named
        self._run = ray.remote(**opts)(run_shard)
        self._warm = ray.remote(**opts)(warm_node)
        _, cpus = self.capacity()
        n = max(1, int(cpus // settings.cpus_per_task))
        self._preloads = [ray.remote(**opts)(preload).remote() for _ in range(n)]  # workers import meanwhile

    # ------------------------------------------------------------ connect
    @classmethod
    def connect(cls, settings: BackendConfig, address: str | None, cpus: int | None, log) -> RayBackend:
        """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local instance on loopback."""
        address = address or settings.address or os.environ.get("RAY_ADDRESS") or None
        if address is not None:
            address = check_address(address, ("--address",))
        local = address is None
        try:
            import ray
        except ImportError:
            raise BackendError(
                "backend ray",
                "Ray is not installed in this environment",
                fix="pip install 'sweep-engine[ray]' (or use the default threads backend)",
            ) from None
        _version_check(ray)
        if ray.is_initialized():  # this process is already connected (a notebook, say): use that, leave it open
            backend = cls(ray, settings, address, local=False, log=log, owned=False)
            log.note(f"ray {ray.__version__}: the connection this process already has (nothing started)")
            return backend
        env = {
            "env_vars": {CACHE_ENV: settings.numba_cache, "NUMBA_NUM_THREADS": str(settings.cpus_per_task)},
            "worker_process_setup_hook": "sweep.rayworker.setup_process",
        }
        if not local and address != "auto":
            _probe(address)
        loopback = local or (address != "auto" and _is_loopback(address.rsplit(":", 1)[0].strip("[]")))
        restore = _use_loopback() if loopback else (lambda: None)
        tick = time.perf_counter()
        with _captured_stderr() as said:
            try:
                if local:
                    ray.init(
                        address="local",
                        num_cpus=cpus or os.cpu_count(),
                        include_dashboard=False,
                        log_to_driver=False,
                        runtime_env=env,
                        logging_level="ERROR",
                    )
                else:
                    _enable_token_auth()
                    with _gcs_retries(5):  # the port answered (probed): a refusal does not change in 20 s
                        ray.init(address=address, log_to_driver=False, runtime_env=env, logging_level="ERROR")
            except Exception as exc:  # noqa: BLE001 - every way Ray fails to start or join is named below
                failure = exc
            else:
                failure = None
        if failure is not None:
            restore()
            if local:
                raise BackendError(
                    "local Ray instance",
                    f"it did not start ({type(failure).__name__}: {str(failure).splitlines()[0][:200]})",
                    fix="`ray start --head` shows why; `ray stop` clears a stale instance",
                ) from None
            raise _connect_error(address, failure, said[0] if said else "") from None
        backend = cls(ray, settings, address, local, log)
        backend.restore = restore
        nodes, cpus_total = backend.capacity()
        where = "a local Ray instance on 127.0.0.1" if local else f"the Ray cluster at {address}"
        log.note(
            f"ray {ray.__version__}: {where}, {nodes} node(s), {cpus_total:g} CPUs "
            f"({time.perf_counter() - tick:.1f}s to {'start' if local else 'join'})"
        )
        return backend

    def alive(self) -> list[dict]:
        """The cluster's live nodes (as ``ray.nodes()`` lists them)."""
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def capacity(self, nodes: list[dict] | None = None) -> tuple[int, float]:
        nodes = self.alive() if nodes is None else nodes
        return len(nodes), sum(n.get("Resources", {}).get("CPU", 0.0) for n in nodes)

    def describe(self) -> dict:
        alive = self.alive()
        nodes, cpus = self.capacity(alive)
        return {
            "type": "ray",
            "ray": self.ray.__version__,
            "address": self.address
            or ("local (127.0.0.1)" if self.local else self.ray.get_runtime_context().gcs_address),
            "nodes": nodes,
            "node_addresses": sorted({n.get("NodeManagerAddress") for n in alive}),
            "cpus": cpus,
            "cpus_per_task": self.settings.cpus_per_task,
        }

    def close(self) -> None:
        """Leave the cluster (a local instance stops); a connection the process had before is left open."""
        if not self.owned:
            return
        with contextlib.suppress(Exception), _captured_stderr():
            self.ray.shutdown()
        self.restore()

    # ------------------------------------------------------------ shards
    def shard_for(self, n_ids: int, memory_bound: int) -> int:
        """Combinations per task: the run's memory bound, split so a window makes up to 64 tasks."""
        if self.settings.shard_combinations:
            return int(self.settings.shard_combinations)
        return max(1, min(memory_bound, max(limits.MIN_SHARD, math.ceil(n_ids / SHARDS_PER_WINDOW))))

    def _put(self, key, make):
        if key not in self.refs:
            value = make()
            ref = self.ray.put(value)
            self.refs[key] = ref
            parts = getattr(value, "parts", None)
            self.put_bytes += parts.nbytes if parts is not None else 8 * 6 * getattr(value, "n", 0)
        return self.refs[key]

    def bind(self, cfg, plan) -> None:
        """The run every task belongs to: its config (as a worker rebuilds the plan from it) and plan key."""
        self.config = raw_config(cfg)
        self.key = plan_key(plan)

    def job(self, run, u, w, lay, record_events: bool, ukey: str) -> tuple[Job, object, object]:
        """A window's task settings and the object-store copies of its bars and feature block (``ukey``: the
        universe's key)."""
        job = Job(
            self.key,
            self.config,
            int(w.start),
            int(w.stop),
            float(u.bars_per_day),
            float(u.bars_per_year),
            bool(record_events),
            lay.spec if lay is not None else None,
            self.settings.cpus_per_task,
        )
        u_ref = self._put(("bars", ukey), lambda: u)
        block = run.feature_block(u)
        if block is not None and block.parts.nbytes > limits.FEATURE_CACHE_BYTES:
            block = None  # every node would hold it (sized by the driver's memory): tasks compute theirs
        f_ref = self._put(("features", ukey, u.bars_per_day), lambda: block) if block is not None else None
        return job, u_ref, f_ref

    def _warm_nodes(self, job, u_ref, f_ref) -> None:
        """One task per node compiles (or loads) the kernel before the shards fan out: no compile races."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        todo = [
            n["NodeID"]
            for n in self.alive()
            if n.get("Resources", {}).get("CPU", 0) >= self.settings.cpus_per_task and n["NodeID"] not in self.warm
        ]
        refs = {
            self._warm.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                job, u_ref, f_ref
            ): node
            for node in todo
        }
        for ref, node in refs.items():
            try:
                self.warm[node] = self._get(ref, f"warm-up on node {node[:8]}")
            except _retryable() as exc:
                raise BackendError(
                    f"warm-up on node {node[:8]}",
                    f"its worker died while compiling the kernel ({type(exc).__name__})",
                    fix="see `ray status` and the worker logs (/tmp/ray/session_latest/logs), then --resume",
                ) from None

    def _get(self, ref, tag: str):
        from ray.exceptions import RayTaskError

        try:
            return self.ray.get(ref)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception) and type(cause).__module__.startswith("services."):
                raise cause from None  # our own error raised in the worker: the same message as locally
            raise BackendError(
                f"shard {tag}",
                f"the task raised {type(cause or exc).__name__}: {str(cause or exc).splitlines()[-1][:300]}",
                fix="run the same config without --backend ray to see it locally",
            ) from None

    def run_shards(self, job, u_ref, f_ref, todo: list) -> Iterator[tuple]:
        """Run shards ``todo`` [(k, tag, ids)] as tasks; yield (k, tag, ids, SimResult) as each completes."""
        if not self.warm:
            self._warm_nodes(job, u_ref, f_ref)
        retryable = _retryable()
        pending = {self._run.remote(job, u_ref, f_ref, ids): (k, tag, ids, 0) for k, tag, ids in todo}
        try:
            while pending:
                if STOP[0]:
                    raise KeyboardInterrupt
                ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    k, tag, ids, attempt = pending.pop(ref)
                    try:
                        res, info = self._get(ref, tag)
                    except retryable as exc:
                        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}"
                        self.retries.append({"shard": tag, "attempt": attempt + 1, "error": why})
                        if attempt >= self.settings.max_retries:
                            raise BackendError(
                                f"shard {tag} ({len(ids):,} combinations)",
                                f"its task failed {attempt + 1} time(s); the last: {why}",
                                fix="see `ray status` and the worker logs (/tmp/ray/session_latest/logs); raise "
                                "backend.max_retries, or lower backend.shard_combinations if workers run out of memory",
                            ) from None
                        self.log.note(
                            f"ray: shard {tag}: {why.split(':')[0]}; running it again ({attempt + 1}/"
                            f"{self.settings.max_retries})"
                        )
                        pending[self._run.remote(job, u_ref, f_ref, ids)] = (k, tag, ids, attempt + 1)
                        continue
                    self.shards += 1
                    self.task_s += info["seconds"]
                    if info["first_shard"]:
                        self.workers[info["pid"]] = info
                    tick = time.perf_counter()
                    yield k, tag, ids, res
                    self.driver_s += time.perf_counter() - tick
        finally:
            # A connection this run owns is shut down at close(), and the job's workers with it.  Cancelling
            # here would race tasks whose replies are in flight: Ray 2.60 aborts the driver (exit 1) when a
            # cancel meets a completing task (ray-project/ray#54738).  A borrowed connection stays open, so
            # its tasks are cancelled; that race remains possible there.
            if not self.owned:
                for ref in pending:
                    with contextlib.suppress(Exception):
                        self.ray.cancel(ref, force=True)

    def write_summary(self, folder: Path | None) -> dict:
        """``backend.json`` in the run folder: nodes, warm-ups, each worker's first-shard cost, retries."""
        out = {
            **self.describe(),
            "shards_run": self.shards,
            "task_seconds": self.task_s,
            "driver_seconds": self.driver_s,
            "object_store_bytes": int(self.put_bytes),
            "warm_up": list(self.warm.values()),
            "workers": sorted(self.workers.values(), key=lambda x: (x["host"], x["pid"])),
            "retries": self.retries,
        }
        if folder is not None:
            from .results import write_json

            write_json(Path(folder) / "backend.json", json.loads(json.dumps(out, default=str)))
        return out
