from __future__ import annotations

import numpy as np
import pytest

from typobench.core.metrics import per_class_accuracy, rate, wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_rate_and_per_class():
    assert rate([True, False, True, True])["value"] == 0.75
    labels = np.array([0, 0, 1, 1])
    preds = np.array([0, 1, 1, 1])
    out = per_class_accuracy(labels, preds, ["a", "b", "c"])
    assert out["a"]["value"] == 0.5 and out["b"]["value"] == 1.0 and "c" not in out
