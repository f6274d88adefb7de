"""Model loading: open_clip names/tags, local checkpoints, hf-hub, and the built-in models."""

from typobench.models.builtin import BuiltinModel, list_builtin_models, register_builtin
from typobench.models.loading import LoadedModel, ModelSpec, file_sha256, list_model_names, load_model, parse_model_spec

__all__ = [
    "BuiltinModel",
    "LoadedModel",
    "ModelSpec",
    "file_sha256",
    "list_builtin_models",
    "list_model_names",
    "load_model",
    "parse_model_spec",
    "register_builtin",
]
