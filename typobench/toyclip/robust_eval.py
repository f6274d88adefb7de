"""Quick validation figures of robust fine-tuning: clean and PGD-10 zero-shot accuracy on held-out training photos."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from typobench.adversarial.pgd import PGDConfig, pgd


def validation_accuracy(logits: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, eps: float,
                        batch: int = 250, seed: int = 0) -> dict[str, float]:
    """Clean accuracy and accuracy under the project's L-inf PGD (10 steps of eps/4, random start) at ``eps``."""
    config = PGDConfig(eps=eps, step_size=eps / 4, steps=10)
    clean = robust = 0
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(y), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        with torch.no_grad():
            clean += int((logits(xb).argmax(1) == yb).sum())
        robust += int((~pgd(logits, xb, yb, config, generator=generator).success).sum())
    return {"clean": clean / len(y), "pgd10": robust / len(y)}
