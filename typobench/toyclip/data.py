"""toyclip's training mixture: CIFAR-10 photos, photos with written words, words alone, colours.

Every written word is drawn by the project's own renderer (``render_patch``), placed by its placement
policies and composited by its compositor, exactly as the attack suites do; only the *distribution*
of words and styles is defined here. A batch is a pure function of ``(seed, step)``: a resumed or
repeated run sees the same images and captions, whatever the worker or process that made them.

Each sample carries a caption and a *key*, the thing its caption names (``"cat"``, ``"lamp"``,
``"color:red"``). Captions with different templates but the same key ("a photo of a cat.", "a blurry
photo of the cat.") describe the same content; the contrastive loss treats every text with an
image's key as a positive for that image (``loss.py``).

The mixture (fractions are ``MixtureConfig`` fields):

* ``photo``: a CIFAR-10 photo, captioned with its class in one of CLIP's 18 CIFAR templates; with
  probability ``occluder_p`` a blank word-sized sticker covers part of it (the caption stays the class).
* ``photo_word``: a photo with one word written on it in a random style (outlined text, a sticker
  box, or plain ink; the styles of the attack suites are inside this distribution). The word is a
  class name, another vocabulary word or a made-up word (``random_string_p``; some of them near misses
  of class names, ``near_miss_p``); the caption names the *word* with probability ``word_caption_p``
  (web captions often mention visible text; ``other_word_caption_p`` for non-class words, never for
  made-up ones), else the photo's class.
* ``word``: a vocabulary word alone on a plain, gradient or noise background, captioned with it.
* ``colour_word``: a colour word in coloured ink on a light background, captioned with its ink
  colour ("a photo of the color blue.") with probability ``ink_caption_p``, else with the word.
  So Stroop has both the ink and the word to compete, and the prompt decides which is read.
* ``colour``: a patch of one colour (full frame or a large rectangle), captioned with the colour.

Held out of training entirely: one font family (``HELD_OUT_FONT_FAMILY``, measured by the
``held-out-font`` suite), the control words of ``attacks/control-word.toml`` (so the control stage
measures covering pixels, not reading a word the model was taught), and Stroop's neutral word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import PIL.Image
import torch

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.data.templates import CIFAR_TEMPLATES
from typobench.stroop import DEFAULT_PALETTE
from typobench.typographic import (
    TextStyle,
    build_canvas,
    composite,
    create_placement,
    list_font_families,
    render_patch,
)

IMAGE_SIZE = 64

# Held out of training: the whole DejaVu Serif family (the held-out-font suite writes in serif-bold,
# the same weight as the suites' sans-bold). The model sees other serif faces (STIX, Computer Modern).
HELD_OUT_FONT_FAMILY = "dejavu-serif"
HELD_OUT_FONT = "serif-bold"

# attacks/control-word.toml's control words and Stroop's neutral word: never written or captioned in
# training (test_toyclip checks that the vocabulary excludes them).
CONTROL_WORDS = ("table", "cloud", "lamp", "river", "chair", "window", "garden", "pencil", "candle", "ladder")
STROOP_NEUTRAL = "example"

# Inks with names: the Stroop palette plus a few more colours (order matters: it fixes the random draws).
COLOURS: dict[str, tuple[int, int, int]] = {
    **DEFAULT_PALETTE,
    "brown": (139, 69, 19),
    "gray": (128, 128, 128),
    "white": (255, 255, 255),
}
# Colours used as ink for colour words (white ink on a light background would be invisible).
INK_COLOURS = tuple(c for c in COLOURS if c != "white")

# Words beyond the class names: concrete nouns and a few adjectives. None is a CIFAR-10 class, a
# control word or the Stroop neutral word.
OTHER_WORDS: tuple[str, ...] = (
    "apple", "baby", "bear", "bed", "bee", "bicycle", "bottle", "bowl", "boy", "bridge", "bus",
    "butterfly", "camel", "castle", "clock", "couch", "crab", "cup", "dolphin", "elephant", "fox",
    "girl", "house", "keyboard", "lion", "lizard", "man", "mountain", "mouse", "mushroom", "pear",
    "plate", "rabbit", "road", "rocket", "rose", "sea", "shark", "snail", "snake", "spider",
    "tiger", "tractor", "train", "tulip", "turtle", "whale", "wolf", "woman", "worm", "book",
    "phone", "radio", "piano", "guitar", "pizza", "bread", "cake", "coffee", "tea", "milk",
    "shoe", "hat", "shirt", "key", "door", "wall", "tree", "flower", "grass", "sun", "moon",
    "star", "rain", "snow", "fire", "water", "stone", "sand", "beach", "city", "street", "park",
    "school", "hotel", "bank", "shop", "market", "money", "gold", "silver", "music", "game",
    "ball", "kite", "boat", "bike", "car", "plane", "jet", "taxi", "van", "wheel", "engine",
    "robot", "computer", "camera", "laptop", "mirror", "basket", "bucket", "knife", "fork",
    "spoon", "jar", "box", "bag", "toy", "doll", "egg", "fish", "owl", "duck", "goose", "cow",
    "pig", "sheep", "goat", "monkey", "panda", "zebra", "giraffe", "horn", "bell", "drum",
    "open", "stop", "exit", "sale", "free", "love", "hello", "yes", "no", "big", "small",
    "hot", "cold", "new", "old", "happy", "danger", "police", "coca", "pepsi", "ipod", "apple pie",
)
# A shorter list for recipes that concentrate reading on fewer words (``MixtureConfig.vocabulary``).
OTHER_WORDS_COMPACT: tuple[str, ...] = (
    "apple", "bear", "bed", "bicycle", "bottle", "bus", "clock", "cup", "house", "lion", "mouse",
    "rabbit", "road", "rocket", "shark", "snake", "tiger", "train", "whale", "wolf", "book", "phone",
    "pizza", "shoe", "hat", "key", "door", "tree", "flower", "sun", "moon", "star", "fire", "water",
    "money", "music", "ball", "boat", "robot", "box", "egg", "fish", "cow", "pig", "open", "stop",
    "sale", "love", "hello", "yes", "no", "ipod",
)
COLOUR_WORDS: tuple[str, ...] = tuple(COLOURS)
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys((*CIFAR10_CLASSNAMES, *OTHER_WORDS, *COLOUR_WORDS)))
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "broad": VOCABULARY,
    "compact": tuple(dict.fromkeys((*CIFAR10_CLASSNAMES, *OTHER_WORDS_COMPACT, *COLOUR_WORDS))),
}

WORD_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the word {}.",
    "the word {}.",
    "a sign that says {}.",
    "the text {}, written in large letters.",
)
# Extra word templates a recipe may add (``MixtureConfig.extra_word_templates``).
COLOUR_INK_WORD_TEMPLATE = "the word {}, written in color."
COLOUR_TEMPLATES: tuple[str, ...] = (
    "a photo of the color {}.",
    "the color {}.",
    "a patch of the color {}.",
)

KINDS = ("photo", "photo_word", "word", "colour_word", "colour")


def training_fonts() -> tuple[str, ...]:
    """Every built-in font outside the held-out family, sorted."""
    families = list_font_families()
    return tuple(sorted(f for family, fonts in families.items() if family != HELD_OUT_FONT_FAMILY for f in fonts))


@dataclass(frozen=True)
class MixtureConfig:
    """Everything that defines the training distribution (recorded in the recipe JSON)."""

    fractions: dict[str, float] = field(default_factory=lambda: {
        "photo": 0.45, "photo_word": 0.30, "word": 0.12, "colour_word": 0.08, "colour": 0.05})
    # photo_word: probability the written word is a CIFAR-10 class name (else another vocabulary word).
    class_word_p: float = 0.5
    # photo_word: probability the caption names the written word rather than the photo's class.
    word_caption_p: float = 0.6
    # photo_word: the same for a written word that is not a class name (None: word_caption_p). Lower than
    # word_caption_p teaches that class names on photos are read, while other words mostly leave the
    # caption to the photo (so an unseen word hurts by covering pixels, not by being read).
    other_word_caption_p: float | None = None
    # photo_word: probability that a non-class word is a made-up word (``random_string``: like the
    # brand names, plates and scraps of text in web photos) instead of a vocabulary word. Its caption
    # always names the photo's class: the model must tell class names from other letter sequences, or
    # any word (such as an unseen control word) is read as the class it looks most like.
    random_string_p: float = 0.0
    # photo_word: probability that a made-up word is a near miss of a class name ("trock", "airplne",
    # "dogr": one or two letters changed, dropped, added or swapped), still captioned with the photo's
    # class. Teaches that only the class name itself is read, not a word that merely looks like it (a
    # model without them read unseen words as look-alike classes: "window" as airplane, "pencil" as truck).
    near_miss_p: float = 0.0
    # photo: probability of a blank sticker (a plain or bordered rectangle the size of a written word)
    # on a photo that keeps its class caption, so that covering pixels alone does not change the class.
    occluder_p: float = 0.0
    # photo_word: probability a word caption uses a word template ("the word {}.") instead of a CIFAR one.
    word_template_p: float = 0.3
    # colour_word: probability the caption names the ink colour rather than the word.
    ink_caption_p: float = 0.5
    # Which words are written: "broad" (VOCABULARY, ~170 words) or "compact" (~70 words).
    vocabulary: str = "broad"
    # word: probability the word alone is a class name; None = uniform over the whole vocabulary.
    word_class_p: float | None = None
    # Templates added to WORD_TEMPLATES for every word caption.
    extra_word_templates: tuple[str, ...] = ()
    # Font size in pixels at 64 px for words on photos (the suites: 0.14-0.2 of the side = 9-13 px).
    photo_word_px: tuple[int, int] = (8, 14)
    word_px: tuple[int, int] = (9, 18)
    # Weight of sans-bold (the suites' font) among the training fonts; the rest share the remainder.
    sans_bold_weight: float = 0.2
    # photo_word styles: outlined text (like the suites' wrong-label/control stages), a sticker box
    # (like the true-label sticker), or plain ink.
    style_p: dict[str, float] = field(default_factory=lambda: {"outline": 0.45, "box": 0.3, "plain": 0.25})
    rotation_p: float = 0.1
    rotation_max: float = 15.0
    # Photo augmentation at 32 px before the bicubic upsampling the evaluation also uses.
    flip_p: float = 0.5
    shift_px: int = 2

    def __post_init__(self) -> None:
        if set(self.fractions) != set(KINDS):
            raise ValueError(f"fractions must name exactly {KINDS}, got {sorted(self.fractions)}")
        if abs(sum(self.fractions.values()) - 1) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {sum(self.fractions.values())}")
        if self.vocabulary not in VOCABULARIES:
            raise ValueError(f"vocabulary must be one of {sorted(VOCABULARIES)}, got {self.vocabulary!r}")
        for template in self.extra_word_templates:
            if template.count("{}") != 1:
                raise ValueError(f"word template {template!r} must contain exactly one '{{}}'")

    @property
    def words(self) -> tuple[str, ...]:
        """Every word this recipe writes or captions."""
        return VOCABULARIES[self.vocabulary]

    @property
    def word_templates(self) -> tuple[str, ...]:
        return (*WORD_TEMPLATES, *self.extra_word_templates)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MixtureConfig:
        data = dict(data)
        for key in ("photo_word_px", "word_px", "extra_word_templates"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


# Named recipes: "r1" is MixtureConfig()'s defaults; "r2" concentrates reading on fewer words, more
# class names, the suites' font and colour words; "r3" to "r7" below (see typobench/models/TOYCLIP_CARD.md).
_R2: dict[str, Any] = {
    "fractions": {"photo": 0.40, "photo_word": 0.32, "word": 0.10, "colour_word": 0.13, "colour": 0.05},
    "class_word_p": 0.7,
    "word_class_p": 0.7,
    "vocabulary": "compact",
    "extra_word_templates": (COLOUR_INK_WORD_TEMPLATE,),
    "photo_word_px": (9, 14),
    "word_px": (9, 16),
    "sans_bold_weight": 0.3,
    "style_p": {"outline": 0.5, "box": 0.3, "plain": 0.2},
    "rotation_p": 0.05,
}
# r3: reading concentrated on class names (other words on photos mostly keep the class caption), more
# colour words, the suites' text sizes.
_R3: dict[str, Any] = {
    **{k: v for k, v in _R2.items() if k != "extra_word_templates"},
    "fractions": {"photo": 0.38, "photo_word": 0.34, "word": 0.10, "colour_word": 0.13, "colour": 0.05},
    "class_word_p": 0.75,
    "word_caption_p": 0.7,
    "other_word_caption_p": 0.3,
    "word_class_p": 0.5,
    "sans_bold_weight": 0.25,
}
# r4: many non-class words on photos that keep the photo's caption (the broad vocabulary and made-up
# words), so that only class names are read (r3 read "ladder" as horse, "window" as airplane).
_R4: dict[str, Any] = {
    **_R3,
    "fractions": {"photo": 0.36, "photo_word": 0.36, "word": 0.10, "colour_word": 0.13, "colour": 0.05},
    "class_word_p": 0.6,
    "word_caption_p": 0.75,
    "other_word_caption_p": 0.2,
    "random_string_p": 0.5,
    "vocabulary": "broad",
}
# r5: r3's strong reading of class names (more of them, captioned by the word more often) with r4's
# non-class and made-up words.
_R5: dict[str, Any] = {
    **_R4,
    "fractions": {"photo": 0.36, "photo_word": 0.38, "word": 0.08, "colour_word": 0.13, "colour": 0.05},
    "class_word_p": 0.7,
    "word_caption_p": 0.85,
    "other_word_caption_p": 0.15,
}
_R6: dict[str, Any] = {**_R5, "occluder_p": 0.35}
PRESETS: dict[str, dict[str, Any]] = {
    "r1": {},
    "r2": _R2,
    "r3": _R3,
    "r4": _R4,
    "r5": _R5,
    # r6: r5 with blank stickers on a third of the plain photos (r5 lost as much accuracy to a word-sized
    # solid bar as to a word: covering, not reading).
    "r6": _R6,
    # r7 (the shipped weights): r6 finished lost only 4 points to a word-sized grey bar but 32 to an unseen
    # control word, read as a look-alike class ("window" -> airplane). So: more photos with non-class words
    # that keep the photo's caption (nearly twice r6's share), a third of the made-up ones near misses of
    # class names; about as many photos with a class name written (25% of samples; r6: 27%).
    "r7": {
        **_R6,
        "fractions": {"photo": 0.32, "photo_word": 0.46, "word": 0.06, "colour_word": 0.11, "colour": 0.05},
        "class_word_p": 0.55,
        "other_word_caption_p": 0.1,
        "near_miss_p": 0.3,
    },
}


def preset(name: str, **overrides: Any) -> MixtureConfig:
    """The named recipe's ``MixtureConfig``, with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown mixture preset {name!r}: choose from {', '.join(PRESETS)}")
    return MixtureConfig.from_dict({**MixtureConfig().to_dict(), **PRESETS[name], **overrides})


@dataclass
class Batch:
    images: torch.Tensor  # [B, 3, 64, 64] in [0, 1]
    captions: list[str]
    keys: list[str]
    kinds: list[str]
    words: list[str | None]  # what is written on each image (None: nothing)


class PhotoBank:
    """CIFAR-10 training photos in memory: uint8 ``[N, 32, 32, 3]`` and labels."""

    def __init__(self, images: np.ndarray, labels: Sequence[int], source: str = "") -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.source = source

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def load(cls, dataset: str = "cifar10-jpeg", root: str | Path | None = None, split: str = "train",
             download: bool = False, limit: int | None = None) -> PhotoBank:
        """Decode a CIFAR-10 split (``cifar10-jpeg`` ImageFolder or torchvision ``cifar10``) into memory."""
        from typobench.data import load_dataset

        ds = load_dataset(dataset, root=root, split=split, transform=lambda im: im, download=download)
        if list(ds.classnames) != list(CIFAR10_CLASSNAMES):
            raise ValueError(f"{dataset} classes {ds.classnames[:3]}... are not CIFAR-10's")
        n = len(ds) if limit is None else min(limit, len(ds))
        first = np.asarray(ds[0][0].convert("RGB"))
        images = np.empty((n, *first.shape), dtype=np.uint8)
        for i in range(n):
            images[i] = np.asarray(ds[i][0].convert("RGB"))
        return cls(images, ds.labels[:n], source=f"{dataset}:{split}")


T = TypeVar("T")


def _pick(options: Sequence[T], rng: np.random.Generator) -> T:
    """One of ``options``, uniformly (one ``rng.integers`` draw)."""
    return options[int(rng.integers(len(options)))]


def _rgb_tensor(rgb: Sequence[int]) -> torch.Tensor:
    """``[3, 1, 1]`` float pixels in [0, 1] from 0-255 RGB (broadcasts over an image)."""
    return torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1) / 255.0


def _jitter(rgb: Sequence[int], rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    out = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(out[0]), int(out[1]), int(out[2]))


def _luminance(rgb: Sequence[int]) -> float:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0


def _random_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    v = rng.integers(0, 256, size=3)
    return (int(v[0]), int(v[1]), int(v[2]))


def _some_colour(rng: np.random.Generator, named_p: float) -> tuple[int, int, int]:
    """A named colour (``COLOURS``) with probability ``named_p``, else any RGB."""
    return COLOURS[_pick(list(COLOURS), rng)] if rng.random() < named_p else _random_rgb(rng)


def _contrasting(rgb: Sequence[int], rng: np.random.Generator, min_diff: float = 0.35) -> tuple[int, int, int]:
    """A colour whose luminance differs from ``rgb`` by at least ``min_diff`` (a named one half the time)."""
    lum = _luminance(rgb)
    for _ in range(20):
        cand = _some_colour(rng, named_p=0.5)
        if abs(_luminance(cand) - lum) >= min_diff:
            return cand
    return (255, 255, 255) if lum < 0.5 else (0, 0, 0)


_NOT_SCRAPS = frozenset((*CIFAR10_CLASSNAMES, *CONTROL_WORDS, STROOP_NEUTRAL))


_VOWELS, _CONSONANTS = "aeiou", "bcdfghjklmnprstvwz"
_LETTERS = _VOWELS + _CONSONANTS


def near_miss(word: str, rng: np.random.Generator) -> str:
    """``word`` with one or two edits (substitute, drop, add or swap letters); never a class name, a
    control word or Stroop's neutral word, and never ``word`` itself. It may be another real word ("cat"
    -> "car"): like every made-up word on a photo, it is captioned with the photo's class."""
    while True:
        letters = list(word)
        for _ in range(int(rng.integers(1, 3))):
            edit, at = int(rng.integers(4)), int(rng.integers(len(letters)))
            if edit == 0:
                letters[at] = _pick(_LETTERS, rng)
            elif edit == 1 and len(letters) > 3:
                del letters[at]
            elif edit == 2:
                letters.insert(at, _pick(_LETTERS, rng))
            elif at + 1 < len(letters):
                letters[at], letters[at + 1] = letters[at + 1], letters[at]
        text = "".join(letters)
        if text != word and text not in _NOT_SCRAPS:
            return text


def random_string(rng: np.random.Generator) -> str:
    """A made-up word: 1-3 syllables (consonant, vowel, sometimes a closing consonant: word-like, as
    "lomar" or "tibendo") 70% of the time, else 3-10 random letters; first letter capitalised 20% of
    the time. Never a class name, a control word or Stroop's neutral word."""
    while True:
        if rng.random() < 0.7:
            parts = []
            for _ in range(int(rng.integers(1, 4))):
                parts.append(_pick(_CONSONANTS, rng) + _pick(_VOWELS, rng))
                if rng.random() < 0.4:
                    parts.append(_pick(_CONSONANTS, rng))
            text = "".join(parts)
        else:
            text = "".join(chr(ord("a") + int(i)) for i in rng.integers(0, 26, size=int(rng.integers(3, 11))))
        if len(text) >= 3 and text not in _NOT_SCRAPS:
            return text.capitalize() if rng.random() < 0.2 else text


class Mixture:
    """Makes training batches: ``mixture.batch(step, batch_size)``, a pure function of (seed, step)."""

    def __init__(self, photos: PhotoBank, config: MixtureConfig | None = None, seed: int = 0) -> None:
        self.photos = photos
        self.config = config or MixtureConfig()
        self.seed = int(seed)
        self.fonts = training_fonts()
        weights = np.array([self.config.sans_bold_weight if f == "sans-bold" else 0.0 for f in self.fonts])
        rest = [i for i, f in enumerate(self.fonts) if f != "sans-bold"]
        weights[rest] = (1 - weights.sum()) / len(rest)
        self.font_p = weights / weights.sum()
        self.kind_p = np.array([self.config.fractions[k] for k in KINDS])
        self.random_placement = create_placement("random")
        self.centre_placement = create_placement("fixed", x=0.5, y=0.5)
        self.classnames = list(CIFAR10_CLASSNAMES)
        self.vocabulary = self.config.words
        self.word_templates = self.config.word_templates
        self.other_words = [w for w in self.vocabulary if w not in self.classnames]

    # -- pieces -------------------------------------------------------------------------------
    def _font(self, rng: np.random.Generator) -> str:
        return self.fonts[int(rng.choice(len(self.fonts), p=self.font_p))]

    def _photo(self, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        index = int(rng.integers(len(self.photos)))
        image = self.photos.images[index]
        cfg = self.config
        if rng.random() < cfg.flip_p:
            image = image[:, ::-1]
        if cfg.shift_px:
            s = cfg.shift_px
            padded = np.pad(image, ((s, s), (s, s), (0, 0)), mode="reflect")
            dy, dx = (int(v) for v in rng.integers(0, 2 * s + 1, size=2))
            image = padded[dy:dy + image.shape[0], dx:dx + image.shape[1]]
        # The same bicubic upsampling as the model's evaluation transform (PIL, 32 -> 64 px).
        pil = PIL.Image.fromarray(np.ascontiguousarray(image)).resize((IMAGE_SIZE, IMAGE_SIZE), PIL.Image.BICUBIC)
        pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return pixels, int(self.photos.labels[index])

    def _background(self, rng: np.random.Generator, light: bool | None = None) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """A plain, gradient or smooth-noise background and its mean colour."""
        if light is None:
            base = _random_rgb(rng)
        elif light:
            base = (255, 255, 255) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(190, 256, size=3))
        else:
            base = tuple(int(v) for v in rng.integers(0, 90, size=3))
        base_t = _rgb_tensor(base)
        image = base_t.expand(3, IMAGE_SIZE, IMAGE_SIZE).clone()
        u = rng.random()
        if u < 0.3:  # gradient towards a nearby colour
            other = _rgb_tensor(_jitter(base, rng, 50))
            ramp = torch.linspace(0, 1, IMAGE_SIZE).view(1, 1, IMAGE_SIZE) if rng.random() < 0.5 else \
                torch.linspace(0, 1, IMAGE_SIZE).view(1, IMAGE_SIZE, 1)
            image = base_t + (other - base_t) * ramp
            image = image.expand(3, IMAGE_SIZE, IMAGE_SIZE).clone()
        elif u < 0.6:  # smooth noise texture
            cells = int(rng.choice([4, 8, 16]))
            noise = torch.from_numpy(rng.normal(0, 1, size=(1, 3, cells, cells)).astype(np.float32))
            noise = torch.nn.functional.interpolate(noise, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)[0]
            image = image + noise * float(rng.uniform(0.03, 0.12))
        return image.clamp(0, 1), base

    def _photo_word_style(self, word: str, rng: np.random.Generator) -> TextStyle:
        cfg = self.config
        size = int(rng.integers(cfg.photo_word_px[0], cfg.photo_word_px[1] + 1))
        kind = list(cfg.style_p)[int(rng.choice(len(cfg.style_p), p=np.array(list(cfg.style_p.values()))))]
        font = self._font(rng)
        rotation = float(rng.uniform(-cfg.rotation_max, cfg.rotation_max)) if rng.random() < cfg.rotation_p else 0.0
        if kind == "outline":
            fill = _some_colour(rng, named_p=0.7)
            stroke = _contrasting(fill, rng, 0.25)
            width = 0.08 if rng.random() < 0.5 else float(rng.uniform(0.05, 0.15))
            return TextStyle(word, font=font, size=size, fill=fill, stroke=stroke, stroke_width=width, rotation=rotation)
        if kind == "box":
            box = (255, 255, 255) if rng.random() < 0.5 else _random_rgb(rng)
            fill = (0, 0, 0) if box == (255, 255, 255) and rng.random() < 0.6 else _contrasting(box, rng)
            padding = float(rng.uniform(0.08, 0.25))
            return TextStyle(word, font=font, size=size, fill=fill, box=box, padding=padding, rotation=rotation)
        fill = _some_colour(rng, named_p=0.6)
        return TextStyle(word, font=font, size=size, fill=fill, rotation=rotation)

    # -- one batch ----------------------------------------------------------------------------
    def batch(self, step: int, batch_size: int) -> Batch:
        rng = np.random.default_rng([self.seed, int(step)])
        cfg = self.config
        kinds = [KINDS[int(k)] for k in rng.choice(len(KINDS), size=batch_size, p=self.kind_p)]
        images = torch.empty(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
        captions: list[str] = []
        keys: list[str] = []
        words: list[str | None] = []
        placements: list[list[tuple[torch.Tensor, tuple[int, int]]]] = []
        for i, kind in enumerate(kinds):
            sample_id = f"{step}/{i}"
            placed: list[tuple[torch.Tensor, tuple[int, int]]] = []
            word: str | None = None
            if kind in ("photo", "photo_word"):
                images[i], label = self._photo(rng)
                if kind == "photo" and cfg.occluder_p > 0 and rng.random() < cfg.occluder_p:
                    self._occlude(images[i], rng)
                classname = self.classnames[label]
                key = classname
                if kind == "photo_word":
                    pool = self.classnames if rng.random() < cfg.class_word_p else self.other_words
                    word = _pick(pool, rng)
                    scrap = pool is self.other_words and cfg.random_string_p > 0 and rng.random() < cfg.random_string_p
                    if scrap:
                        # (The near-miss draw only happens when the option is on: older presets' batches stay identical.)
                        near = cfg.near_miss_p > 0 and rng.random() < cfg.near_miss_p
                        word = near_miss(_pick(self.classnames, rng), rng) if near else random_string(rng)
                    style = self._photo_word_style(word, rng)
                    patch = render_patch(style, IMAGE_SIZE)
                    record = self.random_placement.place(patch.shape[-2:], (IMAGE_SIZE, IMAGE_SIZE), sample_id, seed=self.seed)
                    placed.append((patch, record.positions[0]))
                    caption_p = cfg.word_caption_p
                    if word not in self.classnames and cfg.other_word_caption_p is not None:
                        caption_p = cfg.other_word_caption_p
                    if not scrap and rng.random() < caption_p:
                        key = word
                if key == classname or rng.random() >= cfg.word_template_p:
                    template = _pick(CIFAR_TEMPLATES, rng)
                else:
                    template = _pick(self.word_templates, rng)
                caption = template.format(key)
            elif kind == "word":
                if cfg.word_class_p is None:
                    word = _pick(self.vocabulary, rng)
                else:
                    pool = self.classnames if rng.random() < cfg.word_class_p else self.other_words
                    word = _pick(pool, rng)
                light = None if rng.random() < 0.4 else bool(rng.random() < 0.6)
                images[i], base = self._background(rng, light)
                fill = _contrasting(base, rng)
                size = int(rng.integers(cfg.word_px[0], cfg.word_px[1] + 1))
                style = TextStyle(word, font=self._font(rng), size=size, fill=fill)
                if rng.random() < 0.3:
                    style = style.replace(stroke=_contrasting(fill, rng, 0.25), stroke_width=0.08)
                placed.append(self._place(style, sample_id, rng))
                key = word
                caption = _pick(self.word_templates, rng).format(word)
            elif kind == "colour_word":
                word = _pick(COLOUR_WORDS, rng)
                ink_name = _pick(INK_COLOURS, rng)
                images[i], _ = self._background(rng, light=True)
                size = int(rng.integers(cfg.word_px[0], cfg.word_px[1] + 1))
                style = TextStyle(word, font=self._font(rng), size=size, fill=_jitter(COLOURS[ink_name], rng, 20))
                placed.append(self._place(style, sample_id, rng))
                if rng.random() < cfg.ink_caption_p:
                    key = f"color:{ink_name}"
                    caption = _pick(COLOUR_TEMPLATES, rng).format(ink_name)
                else:
                    key = word
                    caption = _pick(self.word_templates, rng).format(word)
            else:  # colour
                name = _pick(list(COLOURS), rng)
                colour = _rgb_tensor(_jitter(COLOURS[name], rng, 20))
                noise = torch.from_numpy(rng.normal(0, 0.02, size=(3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32))
                if rng.random() < 0.5:
                    images[i] = (colour + noise).clamp(0, 1)
                else:
                    background, _ = self._background(rng, light=name not in ("white", "yellow") and rng.random() < 0.7)
                    h, w = (int(v) for v in rng.integers(int(0.5 * IMAGE_SIZE), IMAGE_SIZE + 1, size=2))
                    y, x = int(rng.integers(0, IMAGE_SIZE - h + 1)), int(rng.integers(0, IMAGE_SIZE - w + 1))
                    background[:, y:y + h, x:x + w] = (colour + noise[:, y:y + h, x:x + w]).clamp(0, 1)
                    images[i] = background
                key = f"color:{name}"
                caption = _pick(COLOUR_TEMPLATES, rng).format(name)
            placements.append(placed)
            captions.append(caption)
            keys.append(key)
            words.append(word)
        if any(placements):
            images = composite(images, build_canvas(placements, (IMAGE_SIZE, IMAGE_SIZE)))
        return Batch(images=images, captions=captions, keys=keys, kinds=kinds, words=words)

    def _occlude(self, image: torch.Tensor, rng: np.random.Generator) -> None:
        """A blank sticker in place: a random-colour rectangle (bordered half the time), as large as a word."""
        h, w = int(rng.integers(7, 19)), int(rng.integers(14, 57))
        y, x = int(rng.integers(0, IMAGE_SIZE - h + 1)), int(rng.integers(0, IMAGE_SIZE - w + 1))
        fill = _some_colour(rng, named_p=0.6)
        image[:, y:y + h, x:x + w] = _rgb_tensor(fill)
        if rng.random() < 0.5:
            border = _rgb_tensor(_contrasting(fill, rng, 0.25))
            inner = image[:, y + 1:y + h - 1, x + 1:x + w - 1].clone()
            image[:, y:y + h, x:x + w] = border
            image[:, y + 1:y + h - 1, x + 1:x + w - 1] = inner

    def _place(self, style: TextStyle, sample_id: str, rng: np.random.Generator) -> tuple[torch.Tensor, tuple[int, int]]:
        patch = render_patch(style, IMAGE_SIZE)
        policy = self.centre_placement if rng.random() < 0.5 else self.random_placement
        record = policy.place(patch.shape[-2:], (IMAGE_SIZE, IMAGE_SIZE), sample_id, seed=self.seed)
        return patch, record.positions[0]
