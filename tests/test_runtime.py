"""cli.runtime: glibc malloc tuning applied by main.py."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from cli.runtime import tune_malloc


def test_tune_malloc_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFACTOR_MALLOC_TUNING", "0")
    assert tune_malloc() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tune_malloc_is_accepted_by_glibc() -> None:
    # a fresh process: mallopt is process-wide
    code = "from cli.runtime import tune_malloc; print(tune_malloc())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1],
                         env={"PATH": "", "PYTHONPATH": "."}).stdout.strip()
    assert out == "True"
