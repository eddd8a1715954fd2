"""Hatchling build hook: compile the native core (``native/``) when a Rust toolchain is on PATH.

``pip install .`` / ``pip install -e .`` run it. With ``cargo`` on PATH it runs
``cargo build --release`` and puts the extension at ``streams/_native.abi3.so`` (into the wheel;
for an editable install, next to the sources). Without ``cargo`` -- or when the build fails -- the
install goes on as pure Python and says so in one line (DECISIONS #56).

Environment: ``HFTSTREAM_BUILD_NATIVE=0`` skips the build; ``HFTSTREAM_REQUIRE_NATIVE=1`` turns a
missing toolchain or a failed build into an error (CI, to catch a broken crate).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_ARTIFACTS = {"linux": "lib_native.so", "darwin": "lib_native.dylib", "win32": "_native.dll"}


def _say(msg: str) -> None:
    print(f"hftstream: {msg}", file=sys.stderr, flush=True)


def build_native(root: Path) -> tuple[Path | None, str]:
    """Build the crate in release mode: (the built library, or None; one line saying what happened)."""
    if os.environ.get("HFTSTREAM_BUILD_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, "native core skipped (HFTSTREAM_BUILD_NATIVE=0): installing pure Python"
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        return None, "no Rust toolchain (cargo) on PATH: installing pure Python, without the native core"
    manifest = root / "native" / "Cargo.toml"
    env = dict(os.environ, PYO3_PYTHON=sys.executable)
    env.setdefault("CARGO_TARGET_DIR", str(root / "native" / "target"))
    t0 = time.monotonic()
    proc = subprocess.run([cargo, "build", "--release", "--manifest-path", str(manifest)], env=env, stdout=sys.stderr, stderr=sys.stderr)
    if proc.returncode != 0:
        return None, f"native core build failed (cargo exit {proc.returncode}): installing pure Python"
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    lib = Path(env["CARGO_TARGET_DIR"]) / "release" / _ARTIFACTS.get(platform, "lib_native.so")
    if not lib.is_file():
        return None, f"native core build produced no {lib.name}: installing pure Python"
    return lib, f"native core built (release) in {time.monotonic() - t0:.0f} s"


class NativeBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        dest = "streams/_native.pyd" if sys.platform == "win32" else "streams/_native.abi3.so"
        lib, line = build_native(root)
        _say(line)
        if lib is None:
            if version == "editable":
                (root / dest).unlink(missing_ok=True)  # an older build must not pass for this install's
            if os.environ.get("HFTSTREAM_REQUIRE_NATIVE", "").strip() == "1":
                raise RuntimeError(f"HFTSTREAM_REQUIRE_NATIVE=1: {line}")
            return
        if version == "editable":
            # the editable install imports streams/ from the source tree: the extension goes next to it
            tmp = root / (dest + ".tmp")
            shutil.copyfile(lib, tmp)
            os.replace(tmp, root / dest)
        else:
            build_data["force_include"][str(lib)] = dest
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
