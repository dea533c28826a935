"""The engine's cache folder on disk: generated kernels, and synthetic data too costly to regenerate each run.

``$SWEEP_KERNEL_DIR`` overrides the kernels' folder; the rest lives under
``$XDG_CACHE_HOME/sweep-engine`` (default ``~/.cache/sweep-engine``).  Files
are written to a temporary name and renamed, so concurrent runs never see
half a file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def cache_dir(kind: str) -> Path:
    if kind == "kernels" and os.environ.get("SWEEP_KERNEL_DIR"):
        path = Path(os.environ["SWEEP_KERNEL_DIR"]) / "kernels"
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweep-engine" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_arrays(kind: str, key: str, make) -> dict[str, np.ndarray]:
    """``make()`` (a dict of arrays) once per ``key``; later calls load it from the cache folder."""
    path = cache_dir(kind) / f"{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):  # damaged or half-written by a crash: make it again
            path.unlink(missing_ok=True)
    out = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **out)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache folder only costs the time to make it again
        tmp.unlink(missing_ok=True)
    return out
