"""toyclip's training recipes: ``MixtureConfig`` (the distribution of training samples) and named presets.

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

``PRESETS`` names the recipes tried (``preset(name)``); ``r7`` made the shipped weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from typobench.toyclip.vocabulary import COLOUR_INK_WORD_TEMPLATE, VOCABULARIES, WORD_TEMPLATES

KINDS = ("photo", "photo_word", "word", "colour_word", "colour")


@dataclass(frozen=True)
class MixtureConfig:
    """Everything that defines the training distribution (recorded in the recipe JSON)."""

    fractions: dict[str, float] = field(default_factory=lambda: {
        "photo": 0.45, "photo_word": 0.30, "word": 0.12, "colour_word": 0.08, "colour": 0.05})
    # A curriculum: the fractions of the first ``early_steps`` steps (None: ``fractions`` throughout).
    early_fractions: dict[str, float] | None = None
    early_steps: int = 0
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
        _check_fractions("fractions", self.fractions)
        if self.early_fractions is not None:
            _check_fractions("early_fractions", self.early_fractions)
        if self.early_steps < 0:
            raise ValueError(f"early_steps must be >= 0, got {self.early_steps}")
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


def _check_fractions(name: str, fractions: dict[str, float]) -> None:
    if set(fractions) != set(KINDS):
        raise ValueError(f"{name} must name exactly {KINDS}, got {sorted(fractions)}")
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"{name} must sum to 1, got {sum(fractions.values())}")


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


# The ViT organism's recipes (typobench/models/TOYCLIP_VIT_CARD.md). r7 unchanged did not read with a ViT:
# text on photos cost accuracy whatever it said. Words alone (kind "word") are the one sample whose only
# content is its letters, so they force letter features; photos with words then teach which words count.
_READING_FRACTIONS = {"photo": 0.15, "photo_word": 0.45, "word": 0.30, "colour_word": 0.07, "colour": 0.03}
PRESETS.update({
    # v1: r7 after a reading-heavy start (a third of the first 1,000 steps are words alone).
    "v1": {**PRESETS["r7"], "early_fractions": _READING_FRACTIONS, "early_steps": 1000},
    # v2: more words throughout, no curriculum.
    "v2": {**PRESETS["r7"], "fractions": {"photo": 0.26, "photo_word": 0.46, "word": 0.15, "colour_word": 0.09,
                                          "colour": 0.04}},
    # v3: neither v1 nor v2 read at all after 1,000 steps (written class 3.4% and 2.4% on 500 validation
    # images), nor did words alone train from scratch. So: twice r7's density of the one signal that teaches
    # reading, a class name written on a photo whose caption names it (39% of samples instead of 21%).
    "v3": {**PRESETS["r7"], "fractions": {"photo": 0.22, "photo_word": 0.58, "word": 0.08, "colour_word": 0.08,
                                          "colour": 0.04},
           "class_word_p": 0.75, "word_caption_p": 0.9, "word_class_p": 0.7},
})


def preset(name: str, **overrides: Any) -> MixtureConfig:
    """The named recipe's ``MixtureConfig``, with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown mixture preset {name!r}: choose from {', '.join(PRESETS)}")
    return MixtureConfig.from_dict({**MixtureConfig().to_dict(), **PRESETS[name], **overrides})
