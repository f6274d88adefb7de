"""Zero-shot prompt templates, each with ``"{}"`` where the class name goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

# CLIP's 18 CIFAR-10/CIFAR-100 templates, from https://github.com/openai/CLIP/blob/main/data/prompts.md
# (identical to clip_benchmark's cifar10/cifar100 templates). open_clip does not ship them.
CIFAR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
)

# For an arbitrary folder we know nothing about the domain, so use CLIP's plain default prompt
# rather than ImageNet- or CIFAR-tuned wording.
GENERIC_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)


def to_template_string(template: str | Callable[[str], str]) -> str:
    """Turn an open_clip template (a ``lambda c: f"...{c}..."`` or a format string) into a ``"{}"`` string."""
    if callable(template):
        text = template("{}")
    else:
        text = template.replace("{c}", "{}")
    if text.count("{}") != 1:
        raise ValueError(f"template {text!r} must contain exactly one '{{}}'")
    return text


def to_template_strings(templates: Sequence[str | Callable[[str], str]]) -> tuple[str, ...]:
    return tuple(to_template_string(t) for t in templates)


@lru_cache(maxsize=1)
def openai_imagenet_templates() -> tuple[str, ...]:
    """CLIP's 80 ImageNet templates as shipped by open_clip (imported lazily: open_clip is slow to import)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return to_template_strings(OPENAI_IMAGENET_TEMPLATES)
