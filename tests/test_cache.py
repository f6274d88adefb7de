"""Content-keyed caches and atomic writes."""

from __future__ import annotations

import json

import pytest
import torch

from typobench.core.atomic import write_json_atomic
from typobench.core.cache import TensorCache, content_key


def test_content_key_changes_with_every_part():
    base = dict(model="a", classnames=["x", "y"], templates=["{}"])
    keys = {
        content_key(**base),
        content_key(**{**base, "model": "b"}),
        content_key(**{**base, "classnames": ["y", "x"]}),
        content_key(**{**base, "templates": ["a {}"]}),
    }
    assert len(keys) == 4
    assert content_key(**base) == content_key(**dict(reversed(list(base.items()))))


def test_code_version_is_part_of_the_key(monkeypatch):
    before = content_key(a=1)
    monkeypatch.setattr("typobench.core.cache.CACHE_CODE_VERSION", "999")
    assert content_key(a=1) != before


def test_tensor_cache_round_trip_and_disabled(tmp_path):
    cache = TensorCache(tmp_path)
    assert cache.load("ns", "k") is None
    cache.save("ns", "k", {"t": torch.arange(6).view(2, 3)})
    assert torch.equal(cache.load("ns", "k")["t"], torch.arange(6).view(2, 3))
    off = TensorCache(None)
    off.save("ns", "k", {"t": torch.zeros(1)})
    assert off.load("ns", "k") is None


def test_atomic_write_leaves_old_file_intact_on_failure(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"ok": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"bad": float("nan")})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
