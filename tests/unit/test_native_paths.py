"""Both paths run: the log and serde suites again under HFTSTREAM_NATIVE=0, and the switch itself (DECISIONS #57)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import native

ROOT = Path(__file__).resolve().parents[2]
# the suites whose assertions pin frames, corruption errors (file, offset, reason) and codec errors
SUITES = ["tests/unit/test_embedded_log.py", "tests/unit/test_embedded_recovery.py", "tests/unit/test_serde.py", "tests/unit/test_native_differential.py",
          "tests/unit/test_venue_fast_paths.py", "tests/unit/test_native_hop_encode.py",
          "tests/unit/test_native_produce_built.py"]


def _env(flag: str) -> dict[str, str]:
    return dict(os.environ, HFTSTREAM_NATIVE=flag)


def test_env_switch_forces_pure_python() -> None:
    code = "from streams import native; from streams.log.embedded import segment; from streams.serde.codec import Serde, SchemaRepo; " \
           "s = Serde(SchemaRepo.load()); print(native.status(), segment._native_parse is None, len(s._native_enc))"
    out = subprocess.run([sys.executable, "-c", code], env=_env("0"), capture_output=True, text=True, check=True).stdout
    assert out.strip() == "native core disabled by HFTSTREAM_NATIVE=0: pure Python True 0"
    cli = str(Path(sys.executable).with_name("hftstream"))
    version = subprocess.run([cli, "--version"], env=_env("0"), capture_output=True, text=True, cwd=ROOT)
    assert version.returncode == 0 and "disabled by HFTSTREAM_NATIVE=0" in version.stdout, version.stdout + version.stderr


@pytest.mark.skipif(not native.active(), reason=f"{native.status()}: this whole run is already the Python path")
def test_log_and_serde_suites_pass_on_the_python_path() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "-q", "-x", "-p", "no:cacheprovider"],
        env=_env("0"), capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    tail = proc.stdout[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail
