"""The demo's digest is the same on the native and the pure-Python path (DECISIONS #57)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import native

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not native.active(), reason=f"{native.status()}: there is no second path to compare")
def test_demo_digest_identical_native_and_python(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("hftstream"))
    digests = {}
    for flag in ("1", "0"):
        out = subprocess.run(
            [cli, "demo", "--orders", "1000", "--no-latency", "--no-verify", "--json", "--data", str(tmp_path / f"native-{flag}")],
            env=dict(os.environ, HFTSTREAM_NATIVE=flag), capture_output=True, text=True, timeout=600,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        report = json.loads(out.stdout)
        assert report["counts_reconcile"] is not False and report["fills"] > 0
        digests[flag] = report["digest"]
    assert digests["1"] == digests["0"]
