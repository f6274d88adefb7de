"""Per-sample randomness: seeds and uniform integers derived from ``(seed, sample_id)`` by SHA-256.

Random placement policies draw from ``SampleStream(seed, sample_id)``, uniform integers made from
SHA-256 of ``(seed, sample_id, counter)``. A sample therefore gets the same position whatever batch
or order it runs in, and, unlike ``torch.randint`` or numpy's ``Generator.integers`` (whose
algorithms may change between releases), on any library version.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, sample_id: str | int, stream: str = "placement") -> int:
    """A 63-bit seed from ``(stream, seed, sample_id)`` via SHA-256.

    ``stream`` separates independent uses (placement vs. choosing the text) so they don't draw
    correlated numbers. ``sample_id`` is used as ``str(sample_id)``: ``5`` and ``"5"`` are the same.
    """
    payload = f"{stream}\x1f{int(seed)}\x1f{sample_id}".encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & ((1 << 63) - 1)


def sample_generator(seed: int, sample_id: str | int, stream: str = "placement") -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``derive_seed(seed, sample_id, stream)``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, sample_id, stream))
    return generator


def sample_rng(seed: int, sample_id: str | int, stream: str = "placement") -> np.random.Generator:
    """A numpy ``Generator`` seeded from ``derive_seed(seed, sample_id, stream)``."""
    return np.random.default_rng(derive_seed(seed, sample_id, stream))


class SampleStream:
    """Uniform random integers for one sample: SHA-256 of ``(stream, seed, sample_id, counter)``.

    Pure Python and version-stable (see the module docstring), and cheap enough to build one per
    sample (a few microseconds, against tens for seeding a ``torch.Generator``).
    """

    def __init__(self, seed: int, sample_id: str | int, stream: str = "placement") -> None:
        self._key = f"{stream}\x1f{int(seed)}\x1f{sample_id}\x1f".encode()
        self._counter = 0
        self._words: list[int] = []

    def _next_word(self) -> int:
        if not self._words:
            digest = hashlib.sha256(self._key + self._counter.to_bytes(8, "little")).digest()
            self._counter += 1
            self._words = [int.from_bytes(digest[i : i + 8], "little") for i in range(24, -1, -8)]
        return self._words.pop()

    def integer(self, n: int) -> int:
        """Uniform in ``[0, n)``. Multiply-shift of a 64-bit word: bias below ``n / 2**64``."""
        if n < 1:
            raise ValueError(f"need n >= 1, got {n}")
        return (self._next_word() * n) >> 64
