"""Models that ship with typobench: open_clip configs (and, for trained ones, weights) in the package.

They are registered with open_clip on import, so they go through exactly the same
``open_clip.create_model`` code path as ``ViT-B-32`` or ``RN50``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import open_clip

from typobench.core.registry import Registry

CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"

# Registering the folder makes ``typobench-*`` names visible to open_clip.list_models().
open_clip.add_model_config(CONFIG_DIR)


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped with the package.

    ``weights`` is a safetensors file inside the package, or None for a random model
    initialised from ``seed`` (a test model whose scores are at chance by construction).
    """

    name: str
    open_clip_name: str
    description: str
    weights: Path | None = None
    seed: int = 0

    @property
    def random_init(self) -> bool:
        return self.weights is None


BUILTIN_MODELS: Registry[BuiltinModel] = Registry("built-in model", "typobench list models")


def register_builtin(model: BuiltinModel) -> None:
    BUILTIN_MODELS.add(model.name, model)


def list_builtin_models() -> list[str]:
    return sorted(BUILTIN_MODELS.names())


def get_builtin_model(name: str) -> BuiltinModel | None:
    """The built-in model called ``name``; None for any other name (an open_clip one, a path, a hub id)."""
    return BUILTIN_MODELS.get(name) if name in BUILTIN_MODELS else None


register_builtin(BuiltinModel(
    name="tiny-rn",
    open_clip_name="typobench-tiny-rn",
    description="random-init ModifiedResNet (RN50 family), layers [1,1,1,1] width 8, 64 px; for tests",
))
register_builtin(BuiltinModel(
    name="tiny-vit",
    open_clip_name="typobench-tiny-vit",
    description="random-init ViT, 2 layers width 64 patch 8, 32 px; for tests",
))
register_builtin(BuiltinModel(
    name="toyclip",
    open_clip_name="typobench-toyclip",
    description="toyclip: ModifiedResNet CLIP trained here on CIFAR-10 photos with written words and colours, 64 px "
                "(model card: typobench/models/TOYCLIP_CARD.md)",
    weights=WEIGHTS_DIR / "toyclip.safetensors",
))
register_builtin(BuiltinModel(
    name="toyclip-vit",
    open_clip_name="typobench-toyclip-vit",
    description="toyclip-vit: ViT CLIP (patch 8, 4 blocks) trained here like toyclip and distilled from it (its text "
                "tower copied), 64 px; it reads "
                "(model card: typobench/models/TOYCLIP_VIT_CARD.md)",
    weights=WEIGHTS_DIR / "toyclip-vit.safetensors",
))
register_builtin(BuiltinModel(
    name="toyclip-fare",
    open_clip_name="typobench-toyclip",
    description="toyclip-fare: toyclip with its image tower robustly fine-tuned by FARE (L-inf 2/255; text tower "
                "frozen) (model card: typobench/models/TOYCLIP_FARE_CARD.md)",
    weights=WEIGHTS_DIR / "toyclip-fare.safetensors",
))
register_builtin(BuiltinModel(
    name="toyclip-tecoa",
    open_clip_name="typobench-toyclip",
    description="toyclip-tecoa: toyclip with its image tower robustly fine-tuned by TeCoA (L-inf 2/255; text tower "
                "frozen) (model card: typobench/models/TOYCLIP_TECOA_CARD.md)",
    weights=WEIGHTS_DIR / "toyclip-tecoa.safetensors",
))
