"""The Stroop test of Goh et al. (2021, "Multimodal Neurons in Artificial Neural Networks").

Colour words are written in an ink colour on a plain background and classified zero-shot by *ink*
colour. With the default palette there are 8 inks (black, red, green, blue, purple, orange, pink,
yellow) x 8 words (the 7 colour words other than black, plus the neutral word "example"):

* congruent: word == ink (7: black has no word),
* incongruent: word != ink (49) -- Goh et al. report that CLIP named the *word* on all 49,
* neutral: the word "example" in each ink (8).

Every font x size combination repeats the whole set. Typical use from a script::

    loaded = load_model("ViT-B-32:openai")
    result = run_stroop(loaded, ["my favorite word, written in the color {}", "a photo of the color {}"])
    result.metrics[0]["word_named"]["value"]     # fraction of incongruent stimuli named by the word
    result.frame()                               # one row per stimulus x prompt
    write_stroop_outputs(result, "runs/stroop")  # stroop.json, stroop.csv, stroop_<i>.png

Scoring is separate from the model: ``score_stroop(stimuli, logits, classnames)`` turns any logits
into outcomes and metrics, and ``run_stroop(..., classifiers={prompt: callable})`` accepts any
pixels -> logits callable in place of the zero-shot classifier.
"""

from __future__ import annotations

import difflib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from .cache import TensorCache, content_key, default_cache_dir
from .classifier import ImageClassifier
from .errors import UsageError
from .heads.build import build_zeroshot_head
from .metrics import rate
from .models import LoadedModel
from .pictures import plain_text
from .runtime import Runtime
from .typographic import FontSpec, TextStyle, build_canvas, composite, parse_color, render_patch, resolve_font

RGB = tuple[int, int, int]

GOH_PROMPT = "my favorite word, written in the color {}"
DEFAULT_PROMPTS = (GOH_PROMPT,)
# Saturated, distinguishable inks that stay readable on white (pure yellow #ffff00 barely is).
DEFAULT_PALETTE: dict[str, RGB] = {
    "black": (0, 0, 0),
    "red": (255, 0, 0),
    "green": (0, 160, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "orange": (255, 128, 0),
    "pink": (255, 105, 180),
    "yellow": (255, 215, 0),
}
# Colours that are inks but not words by default (Goh et al.: no word "black").
NO_WORD_COLOURS = ("black",)
DEFAULT_NEUTRAL = "example"
DEFAULT_FONTS = ("sans",)
# Font size as a fraction of the image side: "example" spans ~78% of the width in DejaVu Sans.
DEFAULT_SIZES: tuple[int | float, ...] = (0.18,)
DEFAULT_BACKGROUND = "white"

KINDS = ("congruent", "incongruent", "neutral")
OUTCOMES = ("ink", "word", "other")  # named the ink (correct), named the word (incongruent only), else
OUTCOME_COLOURS = {"ink": "#2ca02c", "word": "#d62728", "other": "#7f7f7f"}
METRIC_NAMES = ("congruent_accuracy", "incongruent_accuracy", "word_named", "neutral_accuracy")

STROOP_JSON = "stroop.json"
STROOP_CSV = "stroop.csv"
SCHEMA_VERSION = 1

Classify = Callable[[Tensor], Tensor]


# -- parsing and validation -----------------------------------------------------------------


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _known_colour_names() -> list[str]:
    from PIL import ImageColor

    return sorted(set(DEFAULT_PALETTE) | set(ImageColor.colormap))


def _named_colour(name: str) -> RGB:
    """A bare palette entry: the default palette's ink, else a PIL colour name."""
    key = name.lower()
    if key in DEFAULT_PALETTE:
        return DEFAULT_PALETTE[key]
    from PIL import ImageColor

    if key in ImageColor.colormap:
        return parse_color(key)
    hint = difflib.get_close_matches(key, _known_colour_names(), n=3, cutoff=0.6)
    suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
    raise UsageError(f"unknown colour '{name}' in the palette: {suggestion}give it a value, e.g. {name}=#aa5500")


def parse_palette(text: str | Mapping[str, Any] | Sequence[str] | None) -> dict[str, RGB]:
    """Palette from ``"name=#rrggbb,name=colour,name"`` (bare names use the default ink or a PIL name).

    Also accepts a mapping ``{name: colour}`` or a list of entries. The order is the class order.
    """
    if text is None:
        return dict(DEFAULT_PALETTE)
    if isinstance(text, Mapping):
        entries = [(str(k), v) for k, v in text.items()]
    else:
        items = text.split(",") if isinstance(text, str) else list(text)
        entries = []
        for raw in items:
            item = str(raw).strip()
            if not item:
                raise UsageError(f"palette '{text}' has an empty entry: use name=#rrggbb,name=#rrggbb,...")
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not name or (sep and (not value or "=" in value)):
                raise UsageError(f"palette entry '{item}' is malformed: use name=#rrggbb (e.g. red=#ff0000) or a colour name")
            entries.append((name, value if sep else None))
    palette: dict[str, RGB] = {}
    for name, value in entries:
        if not name.strip() or "{" in name or "}" in name:
            raise UsageError(f"palette colour name {name!r} is not usable: use a plain word like 'red'")
        if name.lower() in (n.lower() for n in palette):
            raise UsageError(f"palette names colour '{name}' twice: give each colour once")
        if value is None:
            palette[name] = _named_colour(name)
        else:
            try:
                palette[name] = parse_color(value, f"palette colour for '{name}'")
            except UsageError:
                raise UsageError(f"palette entry '{name}={value}': '{value}' is not a colour, use #rrggbb or a name like 'red'") from None
    if len(palette) < 2:
        raise UsageError(f"palette has {len(palette)} colour(s): give at least 2, e.g. red=#ff0000,blue=#0000ff")
    return palette


def check_prompts(prompts: Sequence[str] | str | None) -> list[str]:
    """Prompts as templates with one ``{}`` for the colour name, each given once."""
    if prompts is None:
        return list(DEFAULT_PROMPTS)
    if isinstance(prompts, str):
        prompts = [prompts]
    out: list[str] = []
    for prompt in prompts:
        if not isinstance(prompt, str) or "{}" not in prompt:
            raise UsageError(f"prompt {prompt!r} has no '{{}}' for the colour name: e.g. \"a photo of the color {{}}\"")
        try:
            prompt.format("x")
        except (IndexError, KeyError, ValueError):
            raise UsageError(f"prompt {prompt!r} has braces other than one '{{}}': write literal braces as '{{{{' and '}}}}'") from None
        if prompt in out:
            raise UsageError(f"prompt {prompt!r} is given twice: give each prompt once")
        out.append(prompt)
    if not out:
        raise UsageError("no prompt given: pass at least one --prompt with '{}' for the colour name")
    return out


def parse_sizes(values: Sequence[str | int | float] | str | None) -> list[int | float]:
    """Font sizes: ``0.18`` (fraction of the image side) or ``14`` (pixels); comma lists allowed."""
    if values is None:
        return list(DEFAULT_SIZES)
    if isinstance(values, (str, int, float)):
        values = [values]
    out: list[int | float] = []
    for value in values:
        parts = value.split(",") if isinstance(value, str) else [value]
        for part in parts:
            if isinstance(part, str):
                part = part.strip()
                try:
                    number: int | float = int(part) if re.fullmatch(r"\d+", part) else float(part)
                except ValueError:
                    raise UsageError(f"size '{part}' is not a number: use a fraction of the image side (0.18) or pixels (14)") from None
            else:
                number = part
            if isinstance(number, float) and not 0.0 < number < 1.0:
                raise UsageError(f"size {number} must be a fraction in (0, 1) or an integer number of pixels")
            if number in out:
                raise UsageError(f"size {number} is given twice: give each size once")
            out.append(number)
    if not out:
        raise UsageError("no size given: use e.g. --sizes 0.18")
    return out


def parse_fonts(values: Sequence[str] | str | None) -> list[FontSpec]:
    """Fonts by registry name or file path (comma lists allowed), resolved with their file hash."""
    if values is None:
        values = list(DEFAULT_FONTS)
    if isinstance(values, str):
        values = [values]
    fonts: list[FontSpec] = []
    for value in values:
        for part in str(value).split(","):
            if not part.strip():
                continue
            spec = resolve_font(part.strip())
            if any(f.name == spec.name for f in fonts):
                raise UsageError(f"font '{spec.name}' is given twice: give each font once")
            fonts.append(spec)
    if not fonts:
        raise UsageError("no font given: use e.g. --fonts sans,serif (see typobench.typographic.list_fonts())")
    return fonts


# -- stimuli --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StroopStimulus:
    """One stimulus: ``word`` written in ``ink`` (a palette name) with ``font`` at ``size``.

    ``word_colour`` is the palette colour the word names (None for the neutral word).
    """

    word: str
    ink: str
    font: str
    size: int | float
    word_colour: str | None

    @property
    def kind(self) -> str:
        if self.word_colour is None:
            return "neutral"
        return "congruent" if self.word_colour == self.ink else "incongruent"


@dataclass(frozen=True)
class StroopDesign:
    """What is shown: palette (class order), words, neutral word, fonts, sizes, background."""

    palette: dict[str, RGB]
    words: tuple[str, ...]
    neutral: str
    fonts: tuple[FontSpec, ...]
    sizes: tuple[int | float, ...]
    background: RGB

    @property
    def classnames(self) -> list[str]:
        return list(self.palette)

    @property
    def columns(self) -> list[str]:
        """Grid columns: the colour words, then the neutral word."""
        return [*self.words, self.neutral]

    def to_dict(self) -> dict[str, Any]:
        return {
            "palette": {name: hex_colour(rgb) for name, rgb in self.palette.items()},
            "words": list(self.words),
            "neutral": self.neutral,
            "fonts": [f.to_dict() for f in self.fonts],
            "sizes": list(self.sizes),
            "background": hex_colour(self.background),
        }


def stroop_design(
    palette: str | Mapping[str, Any] | Sequence[str] | None = None,
    *,
    words: Sequence[str] | None = None,
    neutral: str = DEFAULT_NEUTRAL,
    fonts: Sequence[str] | str | None = None,
    sizes: Sequence[str | int | float] | str | None = None,
    background: Any = DEFAULT_BACKGROUND,
) -> StroopDesign:
    """Validate and resolve the design; every problem is a one-line ``UsageError``.

    ``words`` defaults to every palette colour except black (Goh et al.); each word must be a
    palette name. ``neutral`` must not be one.
    """
    pal = parse_palette(palette)
    lower = {name.lower(): name for name in pal}
    if words is None:
        chosen = [name for name in pal if name.lower() not in NO_WORD_COLOURS]
    else:
        chosen = []
        for word in words:
            word = word.strip()
            if word.lower() not in lower:
                raise UsageError(f"word '{word}' is not a palette colour ({', '.join(pal)}): every word must name one")
            if lower[word.lower()] in chosen:
                raise UsageError(f"word '{word}' is given twice: give each word once")
            chosen.append(lower[word.lower()])
    if not chosen:
        raise UsageError("no colour word to show: add colours other than black to the palette, or pass words")
    neutral = (neutral or "").strip()
    if not neutral:
        raise UsageError("the neutral word is empty: use e.g. 'example'")
    if neutral.lower() in lower:
        raise UsageError(f"neutral word '{neutral}' is a palette colour: pick a word that names no colour, e.g. 'example'")
    bg = parse_color(background, "background")
    for name, rgb in pal.items():
        if rgb == bg:
            raise UsageError(f"ink '{name}' ({hex_colour(rgb)}) is the background colour: change --background or the palette")
    return StroopDesign(pal, tuple(chosen), neutral, tuple(parse_fonts(fonts)), tuple(parse_sizes(sizes)), bg)


def stroop_stimuli(design: StroopDesign | None = None, **design_options: Any) -> list[StroopStimulus]:
    """Every stimulus, ordered font, size, ink (palette order), word (colour words, then neutral).

    Per font x size: ``len(palette) * (len(words) + 1)`` stimuli (64 with the default palette).
    ``design_options`` are passed to ``stroop_design`` when no design is given.
    """
    design = design if design is not None else stroop_design(**design_options)
    stimuli = []
    for font in design.fonts:
        for size in design.sizes:
            for ink in design.palette:
                for word in design.columns:
                    colour = None if word == design.neutral else word
                    stimuli.append(StroopStimulus(word, ink, font.name, size, colour))
    return stimuli


def _style(stimulus: StroopStimulus, design: StroopDesign) -> TextStyle:
    return TextStyle(stimulus.word, font=stimulus.font, size=stimulus.size, fill=design.palette[stimulus.ink])


def render_stimuli(
    stimuli: Sequence[StroopStimulus], design: StroopDesign, image_size: Sequence[int] | int
) -> Tensor:
    """Pixels ``[N, 3, H, W]`` in [0, 1]: each word centred on the plain background, in its ink.

    Uses the project's renderer (``render_patch``) and compositor. A word that does not fit the
    image is a ``UsageError`` (a clipped word would be a different stimulus).
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    side = min(height, width)
    placements = []
    for stimulus in stimuli:
        patch = render_patch(_style(stimulus, design), side)
        h, w = int(patch.shape[1]), int(patch.shape[2])
        if h > height or w > width:
            raise UsageError(f"word '{stimulus.word}' in font '{stimulus.font}' at size {stimulus.size} is {w}x{h} px "
                             f"and does not fit the {width}x{height} image: use a smaller --sizes")
        placements.append([(patch, ((width - w) // 2, (height - h) // 2))])
    background = torch.tensor(design.background, dtype=torch.float32).div(255).view(1, 3, 1, 1)
    images = background.expand(len(stimuli), 3, height, width)
    if not stimuli:
        return images.clone()
    return composite(images, build_canvas(placements, (height, width)))


# -- scoring --------------------------------------------------------------------------------


def score_stroop(stimuli: Sequence[StroopStimulus], logits: Tensor | np.ndarray, classnames: Sequence[str]) -> dict[str, Any]:
    """Predictions, probabilities, outcomes and metrics for one prompt from logits ``[N, C]``.

    Classes are ``classnames`` (the palette order). Returns ``{pred, probs, outcome, metrics}``:
    ``pred`` [N] class indices, ``probs`` [N, C] softmax, ``outcome`` [N] in ink/word/other.
    """
    logits = torch.as_tensor(logits).detach().float().cpu()
    if logits.shape != (len(stimuli), len(classnames)):
        raise ValueError(f"logits {tuple(logits.shape)} must be [{len(stimuli)}, {len(classnames)}] (stimuli x colours)")
    index = {name: i for i, name in enumerate(classnames)}
    probs = torch.softmax(logits, dim=1).numpy()
    pred = logits.argmax(dim=1).numpy()
    ink = np.array([index[s.ink] for s in stimuli], dtype=np.int64)
    word = np.array([index[s.word_colour] if s.word_colour is not None else -1 for s in stimuli], dtype=np.int64)
    kinds = np.array([s.kind for s in stimuli])
    named_ink = pred == ink
    named_word = (pred == word) & (word >= 0)
    outcome = np.where(named_ink, "ink", np.where(named_word, "word", "other"))
    return {"pred": pred, "probs": probs, "outcome": outcome,
            "metrics": stroop_metrics(kinds, named_ink, named_word)}


def stroop_metrics(kinds: np.ndarray, named_ink: np.ndarray, named_word: np.ndarray) -> dict[str, dict]:
    """The four rates (value, Wilson 95% CI, n) from per-stimulus booleans."""
    kinds = np.asarray(kinds)
    named_ink, named_word = np.asarray(named_ink, dtype=bool), np.asarray(named_word, dtype=bool)
    incongruent = kinds == "incongruent"
    return {
        "congruent_accuracy": rate(named_ink[kinds == "congruent"]),
        "incongruent_accuracy": rate(named_ink[incongruent]),
        "word_named": rate(named_word[incongruent]),
        "neutral_accuracy": rate(named_ink[kinds == "neutral"]),
    }


# -- running --------------------------------------------------------------------------------


@dataclass
class PromptResult:
    """Scores of every stimulus under one prompt."""

    prompt: str
    pred: np.ndarray
    probs: np.ndarray
    outcome: np.ndarray
    metrics: dict[str, dict]
    by_condition: list[dict[str, Any]] = field(default_factory=list)
    head: dict[str, Any] = field(default_factory=dict)


@dataclass
class StroopResult:
    """Everything a Stroop run measured; ``frame()`` and ``to_dict()`` are what gets written."""

    design: StroopDesign
    stimuli: list[StroopStimulus]
    image_size: tuple[int, int]
    prompts: list[PromptResult]
    model: dict[str, Any] | None = None

    @property
    def metrics(self) -> list[dict[str, dict]]:
        return [p.metrics for p in self.prompts]

    def frame(self) -> pd.DataFrame:
        """One row per stimulus x prompt."""
        names = self.design.classnames
        index = {name: i for i, name in enumerate(names)}
        ink = np.array([index[s.ink] for s in self.stimuli], dtype=np.int64)
        word = np.array([index.get(s.word_colour, -1) if s.word_colour else -1 for s in self.stimuli], dtype=np.int64)
        rows = np.arange(len(self.stimuli))
        frames = []
        for i, p in enumerate(self.prompts):
            p_word = np.where(word >= 0, p.probs[rows, np.maximum(word, 0)], np.nan)
            frames.append(pd.DataFrame({
                "prompt_index": i,
                "prompt": p.prompt,
                "font": [s.font for s in self.stimuli],
                "size": [s.size for s in self.stimuli],
                "ink": [s.ink for s in self.stimuli],
                "word": [s.word for s in self.stimuli],
                "kind": [s.kind for s in self.stimuli],
                "pred": [names[k] for k in p.pred],
                "p_ink": p.probs[rows, ink],
                "p_word": p_word,
                "outcome": p.outcome,
            }))
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **self.design.to_dict(),
            "image_size": list(self.image_size),
            "n_stimuli_per_prompt": len(self.stimuli),
            "counts": {kind: sum(s.kind == kind for s in self.stimuli) for kind in KINDS},
            "prompts": [p.prompt for p in self.prompts],
            "results": [
                {"index": i, "prompt": p.prompt, "metrics": p.metrics, "by_condition": p.by_condition, "head": p.head}
                for i, p in enumerate(self.prompts)
            ],
        }


def zeroshot_classifier(loaded: LoadedModel, classnames: Sequence[str], prompt: str, cache: TensorCache,
                        device: torch.device | None = None) -> tuple[ImageClassifier, dict[str, Any]]:
    """``ImageClassifier`` over ``classnames`` with one prompt, in eval mode, and its head info."""
    head, info = build_zeroshot_head(loaded, list(classnames), [prompt], cache)
    classifier = ImageClassifier(loaded.model, loaded.mean, loaded.std, head).to(device or loaded.device).eval()
    return classifier, info


def _shared_tower(classifiers: Sequence[Classify]) -> bool:
    """True when every classifier is an ImageClassifier over one image tower and normalisation."""
    if not classifiers or not all(isinstance(c, ImageClassifier) for c in classifiers):
        return False
    first = classifiers[0]
    return all(c.clip_model is first.clip_model and torch.equal(c.mean, first.mean) and torch.equal(c.std, first.std)
               for c in classifiers)


@torch.no_grad()
def classify_stimuli(
    stimuli: Sequence[StroopStimulus],
    design: StroopDesign,
    image_size: Sequence[int],
    classifiers: Sequence[Classify],
    *,
    runtime: Runtime | None = None,
    batch_size: int = 64,
) -> list[Tensor]:
    """Logits ``[N, C]`` of every stimulus under each classifier, rendering batch by batch.

    When all classifiers share one image tower (the zero-shot case), images are encoded once per
    batch and only the heads differ per prompt.
    """
    if batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer, got {batch_size}")
    for c in classifiers:
        if isinstance(c, nn.Module):
            c.eval()
    device = runtime.device if runtime is not None else _device_of(classifiers)
    autocast = runtime.autocast if runtime is not None else _no_autocast
    shared = _shared_tower(classifiers)
    outputs: list[list[Tensor]] = [[] for _ in classifiers]
    for start in range(0, len(stimuli), batch_size):
        pixels = render_stimuli(stimuli[start:start + batch_size], design, image_size).to(device)
        with autocast():
            if shared:
                features = classifiers[0].features(pixels)  # type: ignore[union-attr]
                logits = [c.head(features) for c in classifiers]  # type: ignore[union-attr]
            else:
                logits = [c(pixels) for c in classifiers]
        for out, batch in zip(outputs, logits):
            out.append(batch.float().cpu())
    n_classes = len(design.palette)
    return [torch.cat(out) if out else torch.zeros(0, n_classes) for out in outputs]


def _no_autocast():
    import contextlib

    return contextlib.nullcontext()


def _device_of(classifiers: Sequence[Classify]) -> torch.device:
    for c in classifiers:
        if isinstance(c, nn.Module):
            tensor = next(iter(c.parameters()), None)
            if tensor is None:
                tensor = next(iter(c.buffers()), None)
            if tensor is not None:
                return tensor.device
    return torch.device("cpu")


def _by_condition(stimuli: Sequence[StroopStimulus], scored: dict[str, Any], classnames: Sequence[str]) -> list[dict[str, Any]]:
    """The four rates per font x size (only worth reporting when there is more than one)."""
    conditions = list(dict.fromkeys((s.font, s.size) for s in stimuli))
    if len(conditions) < 2:
        return []
    index = {name: i for i, name in enumerate(classnames)}
    pred = scored["pred"]
    out = []
    for font, size in conditions:
        members = np.array([s.font == font and s.size == size for s in stimuli])
        subset = [s for s, m in zip(stimuli, members) if m]
        ink = np.array([index[s.ink] for s in subset])
        word = np.array([index[s.word_colour] if s.word_colour else -1 for s in subset])
        p = pred[members]
        out.append({"font": font, "size": size,
                    **stroop_metrics(np.array([s.kind for s in subset]), p == ink, (p == word) & (word >= 0))})
    return out


def evaluate_stroop(
    design: StroopDesign,
    image_size: Sequence[int],
    prompts: Sequence[str],
    classifiers: Sequence[Classify],
    *,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    heads: Sequence[dict[str, Any]] | None = None,
    model: dict[str, Any] | None = None,
) -> StroopResult:
    """Score every stimulus of ``design`` with one classifier (pixels -> logits over the palette) per prompt."""
    if len(prompts) != len(classifiers):
        raise ValueError(f"{len(prompts)} prompts but {len(classifiers)} classifiers: give one classifier per prompt")
    stimuli = stroop_stimuli(design)
    size = (int(image_size[0]), int(image_size[1]))
    all_logits = classify_stimuli(stimuli, design, size, classifiers, runtime=runtime, batch_size=batch_size)
    results = []
    for i, (prompt, logits) in enumerate(zip(prompts, all_logits)):
        scored = score_stroop(stimuli, logits, design.classnames)
        results.append(PromptResult(prompt, scored["pred"], scored["probs"], scored["outcome"], scored["metrics"],
                                    _by_condition(stimuli, scored, design.classnames),
                                    dict(heads[i]) if heads is not None else {}))
    return StroopResult(design, stimuli, size, results, model)


def run_stroop(
    loaded: LoadedModel,
    prompts: Sequence[str] | str | None = None,
    *,
    palette: str | Mapping[str, Any] | Sequence[str] | None = None,
    words: Sequence[str] | None = None,
    neutral: str = DEFAULT_NEUTRAL,
    fonts: Sequence[str] | str | None = None,
    sizes: Sequence[str | int | float] | str | None = None,
    background: Any = DEFAULT_BACKGROUND,
    cache: TensorCache | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    classifiers: Mapping[str, Classify] | None = None,
) -> StroopResult:
    """The Stroop test of ``loaded`` under each prompt, at the model's input size.

    By default each prompt gets a zero-shot ``ImageClassifier`` over the palette names (class
    embeddings cached in ``cache``, default: the user cache). ``classifiers`` maps a prompt to any
    pixels -> logits callable instead (a fake in tests, another head in experiments).
    """
    prompts = check_prompts(prompts)
    design = stroop_design(palette, words=words, neutral=neutral, fonts=fonts, sizes=sizes, background=background)
    runtime = runtime or Runtime(loaded.device)
    chosen: list[Classify] = []
    heads: list[dict[str, Any]] = []
    for prompt in prompts:
        if classifiers is not None and prompt in classifiers:
            chosen.append(classifiers[prompt])
            heads.append({"kind": "custom"})
            continue
        if cache is None:
            cache = TensorCache(default_cache_dir())
        classifier, info = zeroshot_classifier(loaded, design.classnames, prompt, cache, runtime.device)
        chosen.append(classifier)
        heads.append(info)
    return evaluate_stroop(design, loaded.image_size, prompts, chosen, runtime=runtime, batch_size=batch_size,
                           heads=heads, model=loaded.describe())


# -- outputs --------------------------------------------------------------------------------


def stroop_config_hash(result: StroopResult, extra: Mapping[str, Any] | None = None) -> str:
    """A hash of everything that determines the numbers: model weights, design, prompts, options."""
    model = result.model or {}
    design = result.design.to_dict()
    # Fonts by name and file hash, not by where the file lies on this machine.
    design["fonts"] = [{k: v for k, v in font.items() if k != "path"} for font in design["fonts"]]
    return content_key(kind="stroop", model=model.get("weights_sha256"), design=design,
                       image_size=list(result.image_size), prompts=[p.prompt for p in result.prompts],
                       extra=dict(extra or {}))


def default_stroop_out_dir(model_label: str, config_hash: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_label)
    return Path("runs") / f"stroop-{slug}-{config_hash[:10]}"


@plain_text
def stroop_figure_png(result: StroopResult, prompt_index: int, *, dpi: int = 100) -> bytes:
    """PNG bytes: per font x size, a grid (rows = ink, columns = word) of the stimuli, each framed by outcome.

    Green frame: named the ink (correct). Red: named the word. Grey: another colour (the predicted
    colour is written under the cell).
    """
    # Agg canvas on a bare Figure: no pyplot, no global backend switch, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    design = result.design
    prompt = result.prompts[prompt_index]
    names = design.classnames
    n_rows, n_cols = len(design.palette), len(design.columns)
    conditions = list(dict.fromkeys((s.font, s.size) for s in result.stimuli))
    per_panel = n_rows * n_cols
    panel_cols = min(len(conditions), max(1, math.ceil(math.sqrt(len(conditions)))), 4)
    panel_rows = -(-len(conditions) // panel_cols)
    # Layout in inches: square cells, a gap under each for the predicted colour when it is neither.
    cell, gap_x, gap_y, label_w = 0.85, 0.08, 0.2, 0.75
    panel_w = label_w + n_cols * (cell + gap_x) + 0.15
    panel_h = 0.3 + 0.22 + n_rows * (cell + gap_y)
    header, footer = 0.7, 0.4
    fig_w, fig_h = panel_cols * panel_w, header + panel_rows * panel_h + footer
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    for k, (font, size) in enumerate(conditions):
        left = (k % panel_cols) * panel_w
        top = header + (k // panel_cols) * panel_h  # inches from the top of the figure
        fig.text((left + panel_w / 2) / fig_w, 1 - (top + 0.12) / fig_h, f"{font}, size {size}   (rows: ink, columns: word)",
                 ha="center", va="center", fontsize=9)
        start = k * per_panel
        stimuli = result.stimuli[start:start + per_panel]
        images = render_stimuli(stimuli, design, result.image_size)
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for j, stimulus in enumerate(stimuli):
            r, c = divmod(j, n_cols)
            x = left + label_w + c * (cell + gap_x)
            y = top + 0.3 + 0.22 + r * (cell + gap_y) + cell  # bottom edge, inches from the top
            ax = fig.add_axes((x / fig_w, 1 - y / fig_h, cell / fig_w, cell / fig_h))
            ax.imshow(images[j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            outcome = str(prompt.outcome[start + j])
            for spine in ax.spines.values():
                spine.set_edgecolor(OUTCOME_COLOURS[outcome])
                spine.set_linewidth(3.5)
            if outcome == "other":
                ax.set_xlabel(names[int(prompt.pred[start + j])], fontsize=7, labelpad=2, color=OUTCOME_COLOURS["other"])
            if c == 0:
                ax.set_ylabel(stimulus.ink, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
            if r == 0:
                ax.set_title(stimulus.word, fontsize=8, pad=4)
    m = prompt.metrics

    def pct(key: str) -> str:
        value = m[key]["value"]
        return "-" if value is None else f"{100 * value:.0f}% of {m[key]['n']}"

    fig.text(0.5, 1 - 0.35 / fig_h, f"prompt: \"{prompt.prompt}\"\ncongruent accuracy {pct('congruent_accuracy')}, "
             f"incongruent accuracy {pct('incongruent_accuracy')}, word named {pct('word_named')}, "
             f"neutral accuracy {pct('neutral_accuracy')}", ha="center", va="center", fontsize=9)
    fig.legend(handles=[Patch(facecolor="none", edgecolor=OUTCOME_COLOURS[o], linewidth=3, label=label)
                        for o, label in (("ink", "named the ink"), ("word", "named the word"),
                                         ("other", "another colour (written below)"))],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def write_stroop_outputs(result: StroopResult, out_dir: str | Path, extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``stroop.csv``, ``stroop_<i>.png`` per prompt, then ``stroop.json`` (last: present = finished).

    Pictures ``stroop_<i>.png`` left by an earlier run with more prompts are removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"csv": out_dir / STROOP_CSV}
    write_text_atomic(files["csv"], result.frame().to_csv(index=False))
    for i in range(len(result.prompts)):
        path = out_dir / f"stroop_{i}.png"
        write_bytes_atomic(path, stroop_figure_png(result, i))
        files[f"png_{i}"] = path
    for stale in out_dir.glob("stroop_*.png"):
        match = re.fullmatch(r"stroop_(\d+)\.png", stale.name)
        if match and int(match.group(1)) >= len(result.prompts):
            stale.unlink()
    files["json"] = out_dir / STROOP_JSON
    record = {"schema_version": SCHEMA_VERSION, **dict(extra or {}), **result.to_dict(),
              "files": {"csv": STROOP_CSV, "pictures": [files[f"png_{i}"].name for i in range(len(result.prompts))]}}
    write_json_atomic(files["json"], record)
    return files




def metrics_table(result: StroopResult) -> str:
    """Fixed-width table: one line per prompt with the four rates (95% Wilson CI)."""
    from .report import format_rate

    header = f"{'#':>2}  {'congruent':<22} {'incongruent':<22} {'word named':<22} {'neutral':<22} prompt"
    lines = [header, "-" * (len(header) + 30)]
    for i, p in enumerate(result.prompts):
        cells = [format_rate(p.metrics[k]["value"], p.metrics[k]["ci95"]) for k in METRIC_NAMES]
        lines.append(f"{i:>2}  " + " ".join(f"{c:<22}" for c in cells) + f" {p.prompt}")
    return "\n".join(lines)
