"""Released Defense-Prefix tokens (Azuma & Matsui 2023) as a ``prompt`` prefix: ``prompt:prefix=FILE.pt``.

Their learned token embeddings come as a PyTorch file; it is read with ``torch.load(weights_only=True)``
(tensors only, never arbitrary pickled code). The file holds a tensor [width], [T, width] or [1, T, width],
or a dict whose one tensor (or the tensor under ``ctx``/``prefix``/``token``, a ``state_dict`` looked into)
is that. Its width must be the text tower's token width: checked when the head is built, with a one-line
error naming the expected shape. Nothing says which images or weights such a prefix was trained on, so its
provenance is unknown (``PromptDefense.provenance_unknown``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.defenses.prefix import PrefixResult, load_prefix, token_embedding_of
from typobench.models import LoadedModel

RELEASED_SUFFIX = ".pt"
TENSOR_KEYS = ("ctx", "prefix", "token", "prompt", "prefix_embedding")


def is_released(path: str | Path) -> bool:
    return Path(path).suffix == RELEASED_SUFFIX


def _find_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("state_dict"), dict):
        return _find_tensor(value["state_dict"])
    for key in TENSOR_KEYS:
        if isinstance(value.get(key), Tensor):
            return value[key]
    tensors = [v for v in value.values() if isinstance(v, Tensor)]
    return tensors[0] if len(tensors) == 1 else None


def read_released(path: str | Path, width: int | None = None) -> Tensor:
    """The prefix rows [T, width] (float32) of a released ``.pt`` file; with ``width``, a prefix of another
    width is a one-line UsageError naming the expected shape."""
    path = Path(path)
    where = f"--defense prompt:prefix={path}: field 'prefix'"
    if not path.is_file():
        raise UsageError(f"{where}: '{path}' not found: pass the Defense-Prefix .pt file")
    try:
        value = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UsageError(f"{where}: '{path}' cannot be read with torch.load(weights_only=True) ({reason}): "
                         "pass a file of tensors") from None
    tensor = _find_tensor(value)
    if tensor is None or not tensor.is_floating_point():
        raise UsageError(f"{where}: '{path}' holds no single float tensor (looked for {', '.join(TENSOR_KEYS)}): "
                         "save the learned token embeddings as one tensor [T, width]")
    rows = tensor.detach().float()
    rows = rows.squeeze(0) if rows.dim() == 3 and rows.shape[0] == 1 else rows
    rows = rows.unsqueeze(0) if rows.dim() == 1 else rows
    expected = f"[T, {width}] or [{width}]" if width else "[T, width] or [width]"
    if rows.dim() != 2 or (width is not None and rows.shape[-1] != width):
        raise UsageError(f"{where}: '{path}' holds a tensor of shape {tuple(tensor.shape)}, expected {expected} "
                         f"(this text tower's token width): pass a prefix trained for a model of that width")
    return rows.contiguous()


def load_any_prefix(path: str | Path, expect_model: LoadedModel | None = None) -> PrefixResult:
    """A learned prefix of either format: ours (``.safetensors``, ``prefix.load_prefix``) or a released ``.pt``."""
    if not is_released(path):
        return load_prefix(path, expect_model=expect_model)
    width = token_embedding_of(expect_model.model).embedding_dim if expect_model is not None else None
    return PrefixResult(read_released(path, width), [], {"format": "defense-prefix-pt", "source": str(path)})


__all__ = ["RELEASED_SUFFIX", "is_released", "load_any_prefix", "read_released"]
