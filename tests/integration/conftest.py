"""Fixtures shared by the runtime's crash and multi-instance tests (see ``tests/runtime_support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime_support import Outputs, reference_outputs
from streams.serde import Serde


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde.from_settings()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, serde: Serde) -> Outputs:
    """The uninterrupted run's outputs, to compare every interrupted run with."""
    return reference_outputs(tmp_path_factory.mktemp("ref"), serde)


@pytest.fixture(params=["embedded", "kafka"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A log URL: a fresh embedded directory, or the suite's real Kafka broker."""
    if request.param == "embedded":
        yield f"embedded://{tmp_path / 'log'}"
    else:
        yield f"kafka://{request.getfixturevalue('kafka_bootstrap')}"
