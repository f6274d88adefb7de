"""A content-addressed disk cache for tensors.

Entries are keyed by a hash of *everything* that determines their content (model weights,
class names, templates, data set sample ids, transform, code version), never by "file exists".
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor

from .atomic import save_atomic

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
        path = self.path(namespace, key)
        if path is None or not path.is_file():
            return None
        return load_file(str(path))

    def save(self, namespace: str, key: str, tensors: dict[str, Tensor]) -> None:
        path = self.path(namespace, key)
        if path is None:
            return
        contiguous = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
        save_atomic(path, lambda tmp: save_file(contiguous, str(tmp)))
