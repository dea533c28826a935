"""The ``backend:`` section: where the shards of combinations run.

``threads`` (the default) runs them in this process on numba threads; ``ray`` sends them to a Ray
cluster (``sweep.raybackend``).  The backend never changes a result, so it is not part of the run's
key: a run done on Ray and the same run on threads are the same run.

    backend: ray                          # a local Ray instance on loopback
    backend: {type: ray, address: "10.0.0.5:6379", cpus_per_task: 2, max_retries: 3}
"""

from __future__ import annotations

import re

import attrs

from services.errors import ConfigError, check_keys

BACKENDS = ("threads", "ray")
BACKEND_KEYS = ("type", "address", "cpus_per_task", "max_retries", "shard_combinations", "numba_cache")
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")


@attrs.frozen
class BackendConfig:
    """Where shards run.  ``address`` None on ``ray``: a local instance (or ``RAY_ADDRESS``)."""

    type: str = attrs.field(default="threads", validator=attrs.validators.in_(BACKENDS))
    address: str | None = None
    cpus_per_task: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    max_retries: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    shard_combinations: int | None = None  # combinations per shard (default: from the plan, see shard_for)
    numba_cache: str = "on"  # on (a node-local folder per user), off (each worker compiles alone), or a folder


def check_address(address, path) -> str:
    """``HOST:PORT`` of a Ray cluster's head (its GCS port, 6379 by default) or ``auto``."""
    text = str(address).strip()
    if text == "auto" or _ADDRESS.match(text) and 0 < int(text.rsplit(":", 1)[1]) < 65536:
        return text
    if text.startswith("ray://"):
        raise ConfigError(
            path,
            "Ray Client addresses (ray://) are not supported: the driver writes the results, so it runs on a "
            "machine of the cluster",
            value=text,
            fix="run `sweep run` on the head node (or any node) with --address HEAD_IP:6379",
        )
    raise ConfigError(path, "expected HOST:PORT of the Ray head (or auto)", value=text, fix="e.g. 10.0.0.5:6379")


def _whole(raw, key, low, default):
    value = raw.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(("backend", key), f"expected a whole number >= {low}", value=value, fix=f"e.g. {key}: {low}")
    return value


def parse_backend(raw) -> BackendConfig:
    """The ``backend:`` section (a name, or a mapping with ``type:``)."""
    if raw is None:
        return BackendConfig()
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(("backend",), "expected threads, ray or a mapping", value=raw, fix="write backend: ray")
    check_keys(raw, BACKEND_KEYS, ("backend",), where="in backend")
    kind = raw.get("type", "threads")
    if kind not in BACKENDS:
        raise ConfigError(("backend", "type"), "expected threads or ray", value=kind, fix="write backend: {type: ray}")
    address = raw.get("address")
    if address is not None:
        if kind != "ray":
            raise ConfigError(("backend", "address"), "an address needs type: ray", value=address, fix="add type: ray")
        address = check_address(address, ("backend", "address"))
    cache = raw.get("numba_cache", True)
    if cache is True or cache == "on":
        cache = "on"
    elif cache is False or cache == "off":
        cache = "off"
    elif not isinstance(cache, str) or not cache.startswith("/"):
        raise ConfigError(
            ("backend", "numba_cache"),
            "expected true, false or an absolute folder (node-local) for numba's cache on the workers",
            value=cache,
            fix="write numba_cache: true",
        )
    default = attrs.fields(BackendConfig)  # the defaults are written once, in the class
    return BackendConfig(
        kind,
        address,
        _whole(raw, "cpus_per_task", 1, default.cpus_per_task.default),
        _whole(raw, "max_retries", 0, default.max_retries.default),
        _whole(raw, "shard_combinations", 1, default.shard_combinations.default),
        cache,
    )
