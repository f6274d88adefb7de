"""Finished batches are written as they complete, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from .atomic import write_json_atomic, write_text_atomic
from .errors import UsageError


class BatchStore:
    """``OUT/.partial/batch-NNNNNN.csv`` per finished batch, guarded by the run's config hash.

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
        return {int(p.stem.split("-")[1]) for p in self.dir.glob("batch-*.csv")}

    def save(self, batch_no: int, frame: pd.DataFrame) -> None:
        write_text_atomic(self.dir / f"batch-{batch_no:06d}.csv", frame.to_csv(index=False))

    def save_meta(self, name: str, payload: dict) -> None:
        write_json_atomic(self.dir / f"{name}.json", payload)

    def load_meta(self, name: str) -> dict | None:
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def load_all(self) -> pd.DataFrame:
        parts = sorted(self.dir.glob("batch-*.csv"))
        return pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
