"""One entry point for every model: open_clip names and tags, local checkpoints, hf-hub, built-ins."""

from __future__ import annotations

import logging
import pickle
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import open_clip
import torch
from safetensors import SafetensorError
from torch import nn
from torchvision import transforms as T

from typobench.core.hashing import file_sha256, tensors_sha256
from typobench.core.errors import UsageError, unknown_name_error
from typobench.models.builtin import get_builtin_model, list_builtin_models
from typobench.models.tower import WRAPPER_PREFIXES, describe_mismatch, load_vision_tower, read_state_dict, strip_common_prefix

HF_HUB_PREFIX = "hf-hub:"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model specification.

    ``name`` is an open_clip architecture, a built-in name, or ``hf-hub:org/repo``;
    ``pretrained`` is an open_clip tag, a local checkpoint path, or None.
    """

    name: str
    pretrained: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.name.startswith(HF_HUB_PREFIX)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.pretrained}" if self.pretrained else self.name


def parse_model_spec(spec: str, pretrained: str | None = None) -> ModelSpec:
    """Split ``NAME:TAG`` (but not ``hf-hub:org/repo``) into a :class:`ModelSpec`."""
    if spec.startswith(HF_HUB_PREFIX):
        if pretrained:
            raise UsageError(f"--pretrained '{pretrained}' cannot be combined with '{spec}': hf-hub models bring their own weights")
        return ModelSpec(spec)
    name, sep, tag = spec.partition(":")
    if sep and pretrained:
        raise UsageError(f"model '{spec}' already names a tag; drop --pretrained '{pretrained}' or the ':{tag}' suffix")
    return ModelSpec(name, tag if sep else pretrained)


@dataclass
class LoadedModel:
    """An open_clip model in eval mode, with what is needed to feed it [0,1] pixels and text.

    ``mean``/``std`` are the normalisation of this pretrained tag (they differ between OpenAI,
    SigLIP, ...); the classifier applies them inside ``forward``, never the data pipeline.
    """

    spec: ModelSpec
    model: nn.Module
    tokenizer: Callable[..., torch.Tensor]
    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    preprocess_cfg: dict[str, Any]
    checkpoint_sha256: str | None
    random_init: bool
    # The image tower swapped in after loading (``--vision-tower``), and its file's sha256.
    vision_tower: str | None = None
    vision_tower_sha256: str | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def pixel_transform(self) -> Callable:
        """PIL image -> [3,H,W] float in [0,1]: the model's own resize/crop, without Normalize."""
        cfg = self.preprocess_cfg
        full = open_clip.image_transform(
            self.image_size, is_train=False, mean=cfg.get("mean"), std=cfg.get("std"),
            resize_mode=cfg.get("resize_mode"), interpolation=cfg.get("interpolation"),
            fill_color=cfg.get("fill_color", 0),
        )
        return T.Compose([t for t in full.transforms if not isinstance(t, T.Normalize)])

    def fingerprint(self) -> str:
        """sha256 over every weight tensor: the identity of the model for cache keys."""
        if self._fingerprint is None:
            self._fingerprint = tensors_sha256(self.model.state_dict())
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        """The model's identity for results.json (the swapped-in image tower only when there is one, so that the
        record of a model without one stays what it was)."""
        tower = {"vision_tower": self.vision_tower, "vision_tower_sha256": self.vision_tower_sha256}
        return {
            "name": self.spec.name,
            "pretrained": self.spec.pretrained,
            "label": self.spec.label,
            "checkpoint_sha256": self.checkpoint_sha256,
            "random_init": self.random_init,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "weights_sha256": self.fingerprint(),
            **(tower if self.vision_tower else {}),
        }


def list_model_names() -> list[str]:
    """Built-in models first, then every open_clip architecture."""
    return list_builtin_models() + [m for m in open_clip.list_models() if not m.startswith("typobench-")]


def _looks_like_path(value: str) -> bool:
    return value.endswith(CHECKPOINT_SUFFIXES) or "/" in value or "\\" in value or Path(value).exists()


def _validate(spec: ModelSpec) -> None:
    """Fail early, in one line, on a name or tag that open_clip does not know (no download attempted)."""
    if get_builtin_model(spec.name) and spec.pretrained is not None:
        raise UsageError(f"built-in model '{spec.name}' has its own weights and does not take --pretrained "
                         f"'{spec.pretrained}': drop --pretrained, or pass an open_clip architecture with it")
    if spec.is_hub or get_builtin_model(spec.name):
        return
    if spec.name not in open_clip.list_models():
        raise unknown_name_error("model", spec.name, list_model_names(), "typobench list models")
    tag = spec.pretrained
    if tag is None:
        return
    if _looks_like_path(tag):
        if not Path(tag).is_file():
            raise UsageError(f"checkpoint '{tag}' not found: pass an existing .safetensors/.pt file or an open_clip tag")
        return
    tags = open_clip.list_pretrained_tags_by_model(spec.name)
    if tag not in tags:
        raise unknown_name_error(f"pretrained tag for {spec.name}", tag, tags, f"typobench list models --name {spec.name}")


def _tag_preprocess(spec: ModelSpec) -> dict[str, Any] | None:
    """The preprocessing (mean, std, ...) registered for an open_clip tag, without downloading."""
    if spec.is_hub or spec.pretrained is None or _looks_like_path(spec.pretrained):
        return None
    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
    keys = ("mean", "std", "interpolation", "resize_mode", "fill_color")
    return {k: cfg[k] for k in keys if k in cfg} or None


def load_model(
    spec: str | ModelSpec,
    pretrained: str | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    cache_dir: str | None = None,
    vision_tower: str | Path | None = None,
) -> LoadedModel:
    """Load any open_clip model, ready for [0,1] pixels, in eval mode on ``device``.

    ``spec`` is ``NAME:TAG`` (``ViT-B-32:openai``), ``NAME`` with ``pretrained`` a tag or a local
    checkpoint, ``hf-hub:org/repo``, or a built-in name (``list_builtin_models()``). Weights are
    kept in fp32; reduced precision is applied with autocast at run time. Downloads go through
    open_clip's own cache (``cache_dir``).
    """
    if isinstance(spec, str):
        spec = parse_model_spec(spec, pretrained)
    _validate(spec)
    builtin = get_builtin_model(spec.name)
    if builtin is not None:
        model, checkpoint = _create_builtin(builtin, seed)
    else:
        model, checkpoint = _create_open_clip(spec, seed, cache_dir)
    tower_sha256 = load_vision_tower(model, vision_tower, spec.label) if vision_tower is not None else None
    model = model.to(device).eval()
    tokenizer = open_clip.get_tokenizer(builtin.open_clip_name if builtin else spec.name)
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}))
    size = cfg.get("size", getattr(model.visual, "image_size", 224))
    size = (size, size) if isinstance(size, int) else tuple(size)
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        image_size=size,
        mean=_triple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=_triple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        preprocess_cfg=cfg,
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None,
        random_init=checkpoint is None and (builtin is not None or spec.pretrained is None) and not spec.is_hub,
        vision_tower=None if vision_tower is None else str(vision_tower),
        vision_tower_sha256=tower_sha256,
    )


def convolutions_channels_last(model: nn.Module) -> bool:
    """Store the image tower's 4-d weights (its convolutions: ResNet towers) channels-last, in place; returns
    whether the tower has any. Why: with bf16 autocast, oneDNN's channels-last convolutions run toyclip 2.6-2.9x
    faster than fp32 (1.6-1.9x with contiguous weights; ``benchmarks/precision.py``); the inputs need no
    conversion. ViT towers (one patch convolution) are left as they are."""
    visual = getattr(model, "visual", model)
    if not any(isinstance(m, nn.Conv2d) for m in visual.modules()) or hasattr(visual, "transformer"):
        return False
    visual.to(memory_format=torch.channels_last)
    return True


def _triple(value: Any) -> tuple[float, float, float]:
    values = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else (value,) * 3))
    return values  # type: ignore[return-value]


@contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """Silence open_clip's "initialized randomly" warning: built-ins say so in their own results."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def _create_builtin(builtin, seed: int) -> tuple[nn.Module, Path | None]:
    # A seeded, forked RNG makes random test models identical across runs without
    # disturbing the caller's global random state.
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        torch.manual_seed(seed if builtin.random_init else builtin.seed)
        model = open_clip.create_model(builtin.open_clip_name, pretrained=None)
    if builtin.weights is None:
        return model, None
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(builtin.weights)).items()}
    model.load_state_dict(state, strict=True)
    return model, builtin.weights


def _create_open_clip(spec: ModelSpec, seed: int, cache_dir: str | None) -> tuple[nn.Module, Path | None]:
    checkpoint = Path(spec.pretrained) if spec.pretrained and _looks_like_path(spec.pretrained) else None
    with torch.random.fork_rng(devices=[]), _unreadable_checkpoint(spec, checkpoint):
        torch.manual_seed(seed)
        # open_clip loads local checkpoints with torch.load(weights_only=True) or safetensors:
        # nothing is unpickled. Tags and hf-hub download through open_clip's own cache.
        model = open_clip.create_model(
            spec.name,
            pretrained=spec.pretrained,
            cache_dir=cache_dir,
            force_preprocess_cfg=_tag_preprocess(spec),
            weights_only=True,
        )
    return model, checkpoint


@contextmanager
def _unreadable_checkpoint(spec: ModelSpec, checkpoint: Path | None) -> Iterator[None]:
    """A local checkpoint that is not one (text, a pickle with forbidden globals, cut short, other weights)
    is a one-line UsageError naming the file and what is expected, not a traceback from deep inside the
    loaders, and never torch's hint to load it with ``weights_only=False`` (that runs the pickle's code)."""
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol before refusing: the one line below says what happened.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            yield
    except Exception as exc:  # torch, safetensors and pickle each raise their own kinds
        if checkpoint is None or isinstance(exc, (UsageError, KeyboardInterrupt)):
            raise
        # torch's first line ("Error(s) in loading state_dict for CLIP:") and open_clip's assertions ("text
        # pos_embed width changed!") name no key: compare the file with the architecture for the first one.
        mismatch = _checkpoint_mismatch(spec, checkpoint)
        raise UsageError(f"--pretrained '{checkpoint}' is not a usable checkpoint for {spec.name}: "
                         f"{mismatch or checkpoint_problem(exc)}; expected a .safetensors file or a PyTorch state "
                         "dict (tensors only, a weights-only .pt/.bin) of the same architecture") from None


def _checkpoint_mismatch(spec: ModelSpec, checkpoint: Path) -> str | None:
    """The first missing/unexpected key or shape that kept ``checkpoint`` from loading into ``spec.name``
    (only on the error path: it builds a random model of the architecture to compare with). None when the file
    is no state dict at all: :func:`checkpoint_problem` then says what it is."""
    try:
        state = strip_common_prefix(read_state_dict(checkpoint, "--pretrained"), WRAPPER_PREFIXES)
    except UsageError:
        return None
    with torch.random.fork_rng(devices=[]), _quiet_open_clip():
        expected = open_clip.create_model(spec.name, pretrained=None).state_dict()
    mismatch = describe_mismatch(expected, state)
    return f"it does not fit {spec.name}: {mismatch}" if mismatch else None


def checkpoint_problem(exc: Exception) -> str:
    """Why loading a checkpoint failed, in a few words; torch's advice to unpickle it unsafely left out."""
    text = str(exc).strip()
    if isinstance(exc, pickle.UnpicklingError) and "weights_only" in text:
        # torch's safe loader stopped at something that is not a tensor (a code-running pickle, or bytes
        # that are no pickle at all): it cannot tell which, and neither can we without unpickling it.
        return "it is no tensors-only checkpoint (other pickled objects are refused: typobench never unpickles them)"
    not_a_file = (KeyError, UnicodeDecodeError, EOFError, pickle.UnpicklingError, SafetensorError)
    if isinstance(exc, not_a_file) or any(m in text for m in ("magic number", "PytorchStreamReader", "zip archive")):
        return "it is neither a safetensors file nor a PyTorch checkpoint"
    # Other failures (a state dict of another architecture): torch's first line, minus any unsafe advice.
    first = text.splitlines()[0] if text else type(exc).__name__
    sentences = [part for part in first.split(". ") if "weights_only" not in part]
    return f"{type(exc).__name__}: {'. '.join(sentences)[:200]}"
