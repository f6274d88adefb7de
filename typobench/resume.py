"""Finished batches are written as they complete, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from safetensors import safe_open
from safetensors.torch import save_file
import torch
from torch import Tensor

from .atomic import save_atomic, write_json_atomic, write_text_atomic
from .errors import UsageError


class BatchStore:
    """``OUT/.partial/part-FIRST-LAST.csv`` per group of finished batches (a ``batch`` column says
    which), guarded by the run's config hash.

    Batches are deterministic (fixed sample order and batch size, per-sample random streams),
    so a resumed run skips finished batches and produces the same predictions.
    """

    def __init__(self, out_dir: Path, config_hash: str):
        self.dir = Path(out_dir) / ".partial"
        self.config_hash = config_hash

    def open(self) -> set[int]:
        """Prepare the store and return the batch numbers already finished."""
        marker = self.dir / "config_hash"
        if self.dir.exists():
            previous = marker.read_text().strip() if marker.exists() else ""
            if previous != self.config_hash:
                raise UsageError(
                    f"{self.dir.parent} holds an unfinished run with a different configuration: "
                    "pass a new --out, or delete that folder to start over"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, self.config_hash)
        done: set[int] = set()
        for part in self.dir.glob("part-*.csv"):
            done.update(pd.read_csv(part, usecols=["batch"])["batch"].tolist())
        return done

    def save(self, batches: dict[int, pd.DataFrame]) -> pd.DataFrame:
        """Write finished batches as one part file; returns their rows (without the ``batch`` column)."""
        frame = pd.concat(batches.values(), ignore_index=True)
        numbers = np.repeat(list(batches), [len(f) for f in batches.values()])
        name = f"part-{min(batches):06d}-{max(batches):06d}.csv"
        write_text_atomic(self.dir / name, frame.assign(batch=numbers).to_csv(index=False))
        return frame

    def save_meta(self, name: str, payload: dict) -> None:
        write_json_atomic(self.dir / f"{name}.json", payload)

    def load_meta(self, name: str) -> dict | None:
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save_examples(self, batch_no: int, tensors: dict[str, Tensor], sample_ids: list[str]) -> None:
        """Images [K,3,H,W] of a few samples of one batch through every stage, for the picture."""
        contiguous = {k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}
        save_atomic(self.dir / f"examples-{batch_no:06d}.safetensors",
                    lambda tmp: save_file(contiguous, str(tmp), metadata={"sample_ids": json.dumps(sample_ids)}))

    def load_examples(self) -> tuple[dict[str, Tensor], list[str]]:
        """All saved example images, concatenated in batch order: ({stage: [K,3,H,W]}, sample ids)."""
        images: dict[str, list[Tensor]] = {}
        sample_ids: list[str] = []
        for path in sorted(self.dir.glob("examples-*.safetensors")):
            with safe_open(str(path), framework="pt") as handle:
                sample_ids += json.loads(handle.metadata()["sample_ids"])
                for key in handle.keys():
                    images.setdefault(key, []).append(handle.get_tensor(key))
        return {k: torch.cat(v) for k, v in images.items()}, sample_ids

    def load_all(self) -> pd.DataFrame:
        """Every saved row, in batch order."""
        frames = [pd.read_csv(p, keep_default_na=False) for p in self.dir.glob("part-*.csv")]
        frame = pd.concat(frames, ignore_index=True)
        return frame.sort_values("batch", kind="stable").drop(columns="batch").reset_index(drop=True)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
