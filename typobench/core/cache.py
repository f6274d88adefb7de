"""A content-addressed disk cache for tensors.

Entries are keyed by a hash of *everything* that determines their content (model weights,
class names, templates, data set sample ids, transform, code version), never by "file exists".
Each entry also records the sha256 of its own tensors: an entry that is cut short or altered is
noticed on read, removed, and rebuilt by the caller (the cache then reports a miss).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import logging

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors
from torch import Tensor

from typobench.core.atomic import write_bytes_atomic
from typobench.core.hashing import tensors_sha256

log = logging.getLogger("typobench")

# Bump when the code that produces cached content changes meaning.
CACHE_CODE_VERSION = "1"


def default_cache_dir() -> Path:
    env = os.environ.get("TYPOBENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "typobench"


def content_key(**parts: Any) -> str:
    """sha256 of the parts as canonical JSON (sorted keys); the code version is always included."""
    payload = json.dumps({"code_version": CACHE_CODE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class TensorCache:
    """``namespace/key.safetensors`` files under ``root``; ``root=None`` disables caching."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root is not None else None

    def path(self, namespace: str, key: str) -> Path | None:
        return None if self.root is None else self.root / namespace / f"{key}.safetensors"

    def load(self, namespace: str, key: str) -> dict[str, Tensor] | None:
        """The entry's tensors, or None when there is none or it was damaged (then it is removed)."""
        path = self.path(namespace, key)
        if path is None or not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                recorded = (handle.metadata() or {}).get("tensors_sha256")
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            return self._discard(path, f"unreadable: {exc}")
        if recorded != tensors_sha256(tensors):
            return self._discard(path, "its tensors do not match their recorded sha256")
        return tensors

    def save(self, namespace: str, key: str, tensors: dict[str, Tensor]) -> None:
        path = self.path(namespace, key)
        if path is None:
            return
        contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
        metadata = {"tensors_sha256": tensors_sha256(contiguous)}
        # Serialised in memory, written by the atomic writer: a full disk is an OSError naming the file.
        write_bytes_atomic(path, save_safetensors(contiguous, metadata=metadata))

    @staticmethod
    def _discard(path: Path, why: str) -> None:
        log.warning("cache entry %s is damaged (%s): removed, rebuilding it", path, why)
        path.unlink(missing_ok=True)
        return None
