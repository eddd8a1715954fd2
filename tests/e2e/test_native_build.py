"""The install builds the native core when cargo is on PATH and stays pure Python without it (DECISIONS #56).

Builds real wheels of this checkout with pip (the PEP 517 path `pip install .` takes); the editable install
`make setup` does runs the same hook.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _wheel(tmp: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, zipfile.ZipFile]:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-v", "-w", str(tmp)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = tmp.glob("hftstream-*.whl")
    return proc, zipfile.ZipFile(wheel)


def test_without_cargo_the_wheel_is_pure_python_says_so_and_keeps_its_data(tmp_path: Path) -> None:
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "cargo").exists())
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO", "HFTSTREAM_REQUIRE_NATIVE")}
    proc, wheel = _wheel(tmp_path, dict(env, PATH=path))
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "hftstream: " in line]
    assert any("no Rust toolchain (cargo) on PATH: installing pure Python" in line for line in said), said
    names = wheel.namelist()
    assert wheel.filename.endswith("-py3-none-any.whl")
    assert not [n for n in names if "_native" in n]
    assert "streams/_data/schemas/hftstream/fills/Fill.avsc" in names and "streams/_data/infra/topics.yaml" in names


@pytest.mark.skipif(shutil.which("cargo") is None, reason="no cargo on PATH: nothing to build the native core with")
def test_with_cargo_the_wheel_carries_the_release_build(tmp_path: Path) -> None:
    proc, wheel = _wheel(tmp_path, dict(os.environ, HFTSTREAM_REQUIRE_NATIVE="1"))
    assert "native core built (release)" in proc.stdout + proc.stderr
    names = wheel.namelist()
    assert "streams/_native.abi3.so" in names and "streams/_data/schemas/hftstream/fills/Fill.avsc" in names
    assert not wheel.filename.endswith("-none-any.whl")
