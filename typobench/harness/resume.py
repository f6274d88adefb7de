"""Finished batches are written as they complete, so an interrupted run resumes where it stopped.

Every file of the store is written atomically and carries the sha256 of its own bytes in its name
(``part-000000-000003-<sha16>.csv``): a file that was cut short, edited or half-copied no longer
matches its name, and its batches are recomputed. A store is guarded by the run's config hash; an
unfinished run of another configuration blocks the folder only if it has finished batches to lose.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from typobench.core.atomic import write_bytes_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.hashing import bytes_sha256
from typobench.harness.columns import Columns, row_count, stack_columns

# A few samples of some batches through every stage: ({stage: [K,3,H,W]}, their K sample ids).
Examples = tuple[dict[str, Tensor], list[str]]

log = logging.getLogger("typobench")
PART = re.compile(r"part-(\d{6})-(\d{6})-([0-9a-f]{16})\.csv")
COMPUTE_FILE = "compute.json"
EXAMPLES = re.compile(r"examples-(\d{6})-([0-9a-f]{16})\.safetensors")


def _checked_name(stem: str, data: bytes, suffix: str) -> str:
    return f"{stem}-{bytes_sha256(data)[:16]}{suffix}"


def _intact(path: Path, recorded: str) -> bytes | None:
    """The file's bytes when their sha256 starts with ``recorded`` (the name's), else None."""
    data = path.read_bytes()
    return data if bytes_sha256(data).startswith(recorded) else None


class BatchStore:
    """``OUT/.partial/``: one part file per group of finished batches (a ``batch`` column says which) and
    a few example images per batch for the picture, guarded by the run's config hash.

    Batches are deterministic (fixed sample order and batch size, per-sample random streams),
    so a resumed run skips finished batches and produces the same predictions.
    """

    ORIGIN = ("batch", "attempt", "rank")  # bookkeeping columns of a part file, not predictions

    def __init__(self, out_dir: Path, config_hash: str):
        self.dir = Path(out_dir) / ".partial"
        self.config_hash = config_hash
        self._parts: dict[Path, pd.DataFrame] = {}
        # Which attempt (a start of the run) and which rank of it wrote a part: results record the spread.
        self.attempt, self.rank = 0, 0
        # How the run computes (``core.runtime.compute_record``), recorded by ``open`` for a resumed run to adopt.
        self.compute: dict | None = None

    def recorded_key(self) -> str | None:
        """The config hash of the unfinished run in this store, if there is one."""
        marker = self.dir / "config_hash"
        return marker.read_text().strip() if marker.exists() else None

    def recorded_compute(self) -> dict | None:
        """How the unfinished run of this configuration computed (threads, precision, deterministic), if
        there is one: a resumed run computes the same way, so its batches match the finished ones."""
        path = self.dir / COMPUTE_FILE
        if self.recorded_key() != self.config_hash or not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:  # written atomically, so damaged from outside: say so, and compute as this process does
            log.warning("%s is damaged: this run computes with its own thread count, and batches finished before "
                        "may differ from new ones in the last bits (delete %s for a clean run)", path, self.dir)
            return None

    def open(self, world_size: int = 1) -> set[int]:
        """Prepare the store, record this attempt (spread over ``world_size`` processes) and return the
        batch numbers already finished (verified). In a spread run only rank 0 calls this."""
        if self.dir.exists() and self.recorded_key() != self.config_hash:
            if self._verified_parts():
                raise UsageError(f"{self.dir.parent} holds an unfinished run with a different configuration: "
                                 "pass a new --out, or --overwrite to replace it")
            log.warning("%s held an unfinished run of another configuration with no finished batch: replaced",
                        self.dir.parent)
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".*.tmp"):  # left by a run killed while writing
            stale.unlink(missing_ok=True)
        write_text_atomic(self.dir / "config_hash", self.config_hash)
        if self.compute is not None:
            write_text_atomic(self.dir / COMPUTE_FILE, json.dumps(self.compute))
        self._parts = self._verified_parts(remove_damaged=True)
        attempts = self.attempts() + [{"world_size": world_size}]
        write_text_atomic(self.dir / "attempts.json", json.dumps(attempts))
        self.attempt = len(attempts) - 1
        return self.finished_batches()

    def open_shared(self, attempt: int, rank: int) -> set[int]:
        """The other ranks' view of a store rank 0 has opened: the finished batches, nothing changed."""
        self._parts = self._verified_parts()
        self.attempt, self.rank = attempt, rank
        return self.finished_batches()

    def finished_batches(self) -> set[int]:
        return {int(b) for frame in self._parts.values() for b in frame["batch"].unique()}

    def attempts(self) -> list[dict]:
        path = self.dir / "attempts.json"
        try:
            return json.loads(path.read_text()) if path.exists() else []
        except ValueError:
            return []  # cut short by a kill: the counts below still come from the part files

    def _verified_parts(self, remove_damaged: bool = False) -> dict[Path, pd.DataFrame]:
        """Every part file whose bytes match its name and whose batches no earlier part holds."""
        parts: dict[Path, pd.DataFrame] = {}
        seen: set[int] = set()
        for path in sorted(self.dir.glob("part-*.csv")) if self.dir.exists() else []:
            frame, why = self._read_part(path, seen)
            if frame is not None:
                parts[path] = frame
                seen.update(int(b) for b in frame["batch"].unique())
            elif remove_damaged:
                log.warning("finished batches %s are damaged (%s): removed, they will be recomputed", path, why)
                path.unlink(missing_ok=True)
        return parts

    @staticmethod
    def _read_part(path: Path, seen: set[int]) -> tuple[pd.DataFrame | None, str]:
        match = PART.fullmatch(path.name)
        if match is None:
            return None, "not a part file name"
        data = _intact(path, match.group(3))
        if data is None:
            return None, "its content does not match its sha256"
        frame = pd.read_csv(io.BytesIO(data), keep_default_na=False)
        if "batch" not in frame.columns or seen & set(frame["batch"].astype(int)):
            return None, "its batches are already in another part"
        return frame, ""

    def save(self, batches: Mapping[int, Columns]) -> pd.DataFrame:
        """Write finished batches (their prediction columns, by batch number) as one part file; returns
        their rows (without the ``batch`` column)."""
        frame = pd.DataFrame(stack_columns(list(batches.values())))
        numbers = np.repeat(list(batches), [row_count(columns) for columns in batches.values()])
        data = frame.assign(batch=numbers, attempt=self.attempt, rank=self.rank).to_csv(index=False).encode("utf-8")
        name = _checked_name(f"part-{min(batches):06d}-{max(batches):06d}", data, ".csv")
        write_bytes_atomic(self.dir / name, data)
        return frame

    def save_examples(self, batches: Mapping[int, Examples]) -> None:
        """Images [K,3,H,W] of a few samples through every stage, for the picture: those of ``batches``
        (by batch number: ({stage: images}, sample ids)), in one file. Written with the batches' part
        file: one write per flush, not one per batch that holds an example."""
        numbers = sorted(batches)
        stages = batches[numbers[0]][0]
        tensors = {stage: torch.cat([batches[b][0][stage].detach().float().cpu() for b in numbers]).contiguous()
                   for stage in stages}
        sample_ids = [sample_id for b in numbers for sample_id in batches[b][1]]
        of_batch = [b for b in numbers for _ in batches[b][1]]
        data = save_safetensors(tensors, metadata={"sample_ids": json.dumps(sample_ids), "batches": json.dumps(of_batch)})
        write_bytes_atomic(self.dir / _checked_name(f"examples-{numbers[0]:06d}", data, ".safetensors"), data)

    def load_examples(self) -> tuple[dict[str, Tensor], list[str]]:
        """All intact example images in batch order, whatever process wrote them: ({stage: [K,3,H,W]}, sample ids)."""
        found: list[tuple[int, str, dict[str, Tensor]]] = []  # (batch, sample id, {stage: [3,H,W]})
        for path in sorted(self.dir.glob("examples-*.safetensors")):
            match = EXAMPLES.fullmatch(path.name)
            data = _intact(path, match.group(2)) if match else None
            if data is None:
                log.warning("example images %s are damaged: left out of the picture", path)
                continue
            try:
                tensors, metadata = load_safetensors(data), _metadata_of(data)
                ids = json.loads(metadata["sample_ids"])
                of_batch = json.loads(metadata.get("batches", "null")) or [int(match.group(1))] * len(ids)
            except (SafetensorError, ValueError, KeyError) as exc:
                log.warning("example images %s are unreadable (%s): left out of the picture", path, exc)
                continue
            found += [(b, i, {k: v[row] for k, v in tensors.items()}) for row, (b, i) in enumerate(zip(of_batch, ids))]
        found.sort(key=lambda item: item[0])  # stable: a batch's samples keep their order
        if not found:
            return {}, []
        return ({stage: torch.stack([images[stage] for _, _, images in found]) for stage in found[0][2]},
                [sample_id for _, sample_id, _ in found])

    def load_all(self) -> pd.DataFrame:
        """Every saved row, in batch order (parts verified by ``open`` or read now)."""
        frame = self._all_rows()
        return frame.drop(columns=[c for c in self.ORIGIN if c in frame.columns])

    def spread(self) -> list[dict]:
        """Per attempt: how many processes, and how many samples each rank evaluated (from the part files)."""
        frame = self._all_rows()
        attempts = self.attempts()
        out = []
        for attempt, info in enumerate(attempts):
            rows = frame[frame.get("attempt", pd.Series(0, index=frame.index)) == attempt]
            size = int(info.get("world_size", 1))
            counts = rows.groupby("rank")["sample_id"].nunique() if len(rows) else pd.Series(dtype=int)
            out.append({"world_size": size, "samples_per_rank": [int(counts.get(r, 0)) for r in range(size)]})
        return out

    def _all_rows(self) -> pd.DataFrame:
        """Every part's rows, in batch order. Parts verified by ``open`` are kept; the ones written since (this
        run's, every rank's) are read once and kept too, so ``load_all`` then ``spread`` read no file twice."""
        for path in sorted(self.dir.glob("part-*.csv")):
            if path not in self._parts:
                self._parts[path] = pd.read_csv(path, keep_default_na=False)
        frame = pd.concat(list(self._parts.values()), ignore_index=True)
        return frame.sort_values("batch", kind="stable").reset_index(drop=True)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _metadata_of(data: bytes) -> dict[str, str]:
    """A safetensors file's metadata (header: 8-byte length, then JSON)."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length])["__metadata__"]


__all__ = ["BatchStore", "Examples"]
