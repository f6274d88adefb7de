"""Image-tower checkpoints (FARE, TeCoA release only CLIP's ``visual`` state dict) and the one-line account of
why a state dict does not fit a model, shared with full ``--pretrained`` checkpoints.

Nothing is unpickled: safetensors, or ``torch.load(weights_only=True)``, which refuses arbitrary objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256

# Wrappers that training code leaves on every key: DataParallel/DDP (module.), Lightning-style (model.).
WRAPPER_PREFIXES = ("module.", "model.")
VISUAL_PREFIX = "visual."
# Keys under which training scripts nest the state dict itself.
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "vision_model")


def read_state_dict(path: str | Path, option: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors or weights-only ``.pt`` file (nested ``state_dict``/``model`` unwrapped);
    a file that is none of these is a one-line ``UsageError`` naming ``option`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{option} '{path}' not found: pass an existing .safetensors or .pt file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, torch and pickle each raise their own kinds; all mean "not usable"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"{option} '{path}' is not a readable checkpoint ({type(exc).__name__}: {reason}): "
                         "pass a .safetensors or weights-only .pt file") from None
    return _tensors(_unnest(state), path, option)


def _unnest(state: object) -> object:
    # A state dict's values are tensors, so a mapping under one of these keys marks a training script's wrapper
    # ({"state_dict": {...}, "epoch": 3}); its other entries are not weights.
    while isinstance(state, Mapping):
        inner = next((state[k] for k in NESTED_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    return state


def _tensors(state: object, path: Path, option: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping) or not state:
        raise UsageError(f"{option} '{path}' holds no state dict ({type(state).__name__}): "
                         "pass a file of parameter name -> tensor")
    odd = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise UsageError(f"{option} '{path}' holds a non-tensor entry '{odd}' "
                         f"({type(state[odd]).__name__}): pass a plain state dict of tensors")
    return {str(k): v for k, v in state.items()}


def strip_common_prefix(state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """``state`` with each of ``prefixes`` removed while *every* key carries it (never from some keys only:
    a key of the model itself might begin with one)."""
    state = dict(state)
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped = True
    return state


def tower_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image tower's keys, named as in ``model.visual``: wrapper prefixes removed; from a full CLIP state
    dict (keys ``visual.*`` next to the text tower's) only the ``visual.*`` keys, prefix removed."""
    state = strip_common_prefix(state, WRAPPER_PREFIXES)
    if any(k.startswith(VISUAL_PREFIX) for k in state):
        state = {k[len(VISUAL_PREFIX):]: v for k, v in state.items() if k.startswith(VISUAL_PREFIX)}
    return strip_common_prefix(state, WRAPPER_PREFIXES)


def describe_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps ``given`` from loading strictly where ``expected`` is the model's state dict: the first missing
    and the first unexpected key (with counts), or the first key whose shapes differ; None when it fits."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    parts = []
    if missing:
        parts.append(f"missing key '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        parts.append(f"unexpected key '{unexpected[0]}'{more}")
    shapes = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    if shapes:
        key = shapes[0]
        more = f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""
        parts.append(f"key '{key}' has shape {list(given[key].shape)} in the file but "
                     f"{list(expected[key].shape)} in the model{more}")
    return ", ".join(parts) or None


def load_vision_tower(model: nn.Module, path: str | Path, architecture: str) -> str:
    """Replace ``model.visual``'s weights with the tower in ``path``, strictly; returns the file's sha256.

    A file that does not fit is one ``UsageError`` naming the first missing/unexpected key or shape."""
    option = "--vision-tower"
    visual = getattr(model, "visual", None)
    if not isinstance(visual, nn.Module):
        raise UsageError(f"{option}: model '{architecture}' has no image tower (.visual): use a CLIP-style model")
    state = tower_state(read_state_dict(path, option))
    current = visual.state_dict()
    mismatch = describe_mismatch(current, state)
    if mismatch:
        raise UsageError(f"{option} '{path}' does not fit the image tower of '{architecture}': {mismatch}; "
                         "pass the tower of the same architecture (keys as in model.visual, optionally prefixed "
                         "visual., module. or model.)")
    # The model's own dtypes: a tower saved in fp16/bf16 is loaded into fp32 weights like any checkpoint.
    visual.load_state_dict({k: v.to(current[k].dtype) for k, v in state.items()}, strict=True)
    return file_sha256(path)
