"""stratified_subset and sample_hash: deterministic, stratified, order-independent."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from typobench.data import sample_hash, stratified_subset
from typobench.core.errors import UsageError

LABELS = [i % 10 for i in range(1000)]  # 10 classes x 100


def per_class(labels: list[int], indices: list[int]) -> Counter[int]:
    return Counter(labels[i] for i in indices)


def test_deterministic_and_sorted() -> None:
    first = stratified_subset(LABELS, 137, seed=3)
    assert first == stratified_subset(LABELS, 137, seed=3)
    assert first == sorted(first) and len(first) == 137 and len(set(first)) == 137


@pytest.mark.parametrize("limit", [1, 9, 10, 57, 100, 999])
def test_stratified_counts_differ_by_at_most_one(limit: int) -> None:
    counts = per_class(LABELS, stratified_subset(LABELS, limit, seed=0))
    full = [counts.get(c, 0) for c in range(10)]
    assert sum(full) == limit
    assert max(full) - min(full) <= 1


def test_different_seed_gives_different_subset() -> None:
    a = stratified_subset(LABELS, 50, seed=0)
    b = stratified_subset(LABELS, 50, seed=1)
    assert a != b
    assert per_class(LABELS, a) == per_class(LABELS, b)  # still 5 per class


def test_limit_at_least_n_returns_everything() -> None:
    assert stratified_subset(LABELS, 1000, seed=0) == list(range(1000))
    assert stratified_subset([2, 0, 1], 10, seed=5) == [0, 1, 2]


def test_limit_below_one_is_usage_error() -> None:
    with pytest.raises(UsageError, match="positive"):
        stratified_subset(LABELS, 0, seed=0)


def test_small_class_is_exhausted_and_the_rest_shared_fairly() -> None:
    labels = [0] * 2 + [1] * 50 + [2] * 50
    counts = per_class(labels, stratified_subset(labels, 30, seed=0))
    assert counts[0] == 2  # all it has
    assert counts[1] + counts[2] == 28 and abs(counts[1] - counts[2]) <= 1


def test_unseen_label_values_and_nested_draws() -> None:
    labels = [999] * 20 + [7] * 20  # labels need not be 0..k-1 (e.g. a partial ImageNet)
    small = stratified_subset(labels, 10, seed=4)
    large = stratified_subset(labels, 20, seed=4)
    assert per_class(labels, small) == {999: 5, 7: 5}
    assert set(small) <= set(large)  # growing the quota only adds items


def test_sample_hash_is_order_independent_and_changes_with_ids() -> None:
    ids = ["test/cat/0001.jpg", "test/dog/0002.jpg", "test/cat/0003.jpg"]
    digest = sample_hash(ids)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert sample_hash(list(reversed(ids))) == digest
    assert sample_hash(ids[:2]) != digest
    assert sample_hash([*ids[:2], "test/cat/0004.jpg"]) != digest
    # documented definition: sorted ids, each followed by a newline, in UTF-8
    assert digest == hashlib.sha256("".join(i + "\n" for i in sorted(ids)).encode()).hexdigest()
