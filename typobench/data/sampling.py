"""Deterministic, class-stratified subsets and a hash that identifies which items were used.

The draw is defined by SHA-256, not by a random number generator, so the same ``(labels, limit,
seed)`` gives the same indices on every platform and every NumPy/Python version: a ``--limit``
result stays reproducible years later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from typobench.core.errors import UsageError


def _rank_key(seed: int, kind: str, value: int) -> bytes:
    """A pseudo-random but fixed sort key for ``value`` under ``seed``."""
    return hashlib.sha256(f"typobench:{kind}:{seed}:{value}".encode()).digest()


def stratified_subset(labels: Sequence[int], limit: int, seed: int) -> list[int]:
    """Choose ``limit`` indices into ``labels``, as equally many per class as possible; sorted.

    Each class gets ``limit // k`` items (``k`` = number of classes present); the remaining
    ``limit % k`` go one each to classes picked by ``seed``. A class with too few items gives all of
    them and its unused share is spread over the others (max-min fair), so per-class counts differ by
    at most 1 except for classes that were exhausted. Within a class, items are taken in the order of
    ``sha256(seed, index)``, so for a fixed seed a smaller limit picks a subset of a larger one's
    items whenever the per-class quotas do not shrink.

    ``limit >= len(labels)`` returns every index. ``limit < 1`` is a ``UsageError``.
    """
    limit = int(limit)
    if limit < 1:
        raise UsageError(f"limit must be a positive number of images, got {limit}")
    n = len(labels)
    if limit >= n:
        return list(range(n))

    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(int(label), []).append(index)

    # Classes in a seeded order: the first ones receive the remainder when limit % k != 0.
    active = sorted(members, key=lambda c: _rank_key(seed, "class", c))
    quota = dict.fromkeys(members, 0)
    remaining = limit
    while remaining > 0:
        active = [c for c in active if quota[c] < len(members[c])]
        share = remaining // len(active)  # active is non-empty: limit < n leaves capacity somewhere
        if share == 0:
            for c in active[:remaining]:
                quota[c] += 1
            break
        for c in active:
            take = min(share, len(members[c]) - quota[c])
            quota[c] += take
            remaining -= take

    chosen: list[int] = []
    for c, items in members.items():
        ranked = sorted(items, key=lambda i: _rank_key(seed, "item", i))
        chosen.extend(ranked[: quota[c]])
    return sorted(chosen)


def sample_hash(sample_ids: Sequence[str]) -> str:
    """SHA-256 hex digest identifying a set of items, independent of their order.

    Defined as the SHA-256 of the ids sorted by code point, each followed by ``"\\n"``, in UTF-8 —
    the same as ``printf '%s\\n' ids... | LC_ALL=C sort | sha256sum`` in a shell.
    """
    digest = hashlib.sha256()
    for sample_id in sorted(sample_ids):
        digest.update(sample_id.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
