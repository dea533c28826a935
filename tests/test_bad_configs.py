"""The corpus of bad configs: each gets one clear message with path, value and fix, exit 2, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.cli import main
from sweep.errors import ConfigError
from sweep.expander import expand

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))


def _header(path: Path) -> tuple[str, int | None]:
    text = path.read_text()
    expect = re.search(r"^# expect: (.*)$", text, re.M).group(1).strip()
    line = re.search(r"^# line: (\d+)$", text, re.M)
    return expect, int(line.group(1)) if line else None


def test_corpus_is_not_empty():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_config_message(path, capsys, monkeypatch):
    monkeypatch.chdir(path.parent)
    expect, line = _header(path)
    with pytest.raises(ConfigError) as info:
        expand(str(path), count_data=False)
    msg = str(info.value)
    assert expect in msg, msg
    assert msg.startswith(str(path)), msg  # names the file
    assert "Fix:" in msg, msg
    if line is not None:
        assert msg.startswith(f"{path}:{line}: "), msg
    # the CLI prints the same message and exits 2
    assert main(["expand", str(path)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err


def test_cli_subprocess_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies:\n  - type: ma_crossover\n    parameters: {fast: 0}\n")
    proc = subprocess.run([sys.executable, "-m", "sweep", "expand", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "strategies[0].parameters.fast: expected int >= 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_config_file(capsys):
    assert main(["expand", "definitely/not/here.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_guard_can_be_raised_from_cli(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategies:\n  - type: momentum\n    parameters: {lookback_period: {start: 1, stop: 30}}\n")
    assert main(["expand", str(cfg), "--max-combinations", "10"]) == 2
    assert "more than the limit of 10" in capsys.readouterr().err
    assert main(["expand", str(cfg), "--max-combinations", "30", "--json"]) == 0
