"""Refactors keep the numbers: five workloads give the predictions and figures pinned in tests/pinned.json."""

from __future__ import annotations

import json

import pytest

from pinned import PINNED_FILE, WORKLOADS


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_matches_pinned(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TYPOBENCH_CACHE", str(tmp_path / "cache"))
    pinned = json.loads(PINNED_FILE.read_text())[name]
    got = json.loads(json.dumps(WORKLOADS[name](tmp_path)))
    assert got == pinned
