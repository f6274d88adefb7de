"""What toyclip's training writes and captions: words, named colours, caption templates, training fonts.

Also what training holds out entirely: one font family (``HELD_OUT_FONT_FAMILY``, measured by the
``held-out-font`` suite), the control words of ``attacks/control-word.toml`` (so the control stage
measures covering pixels, not reading a word the model was taught), and Stroop's neutral word.
"""

from __future__ import annotations

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.typographic.stroop import DEFAULT_PALETTE
from typobench.typographic import list_font_families

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


def training_fonts() -> tuple[str, ...]:
    """Every built-in font outside the held-out family, sorted."""
    families = list_font_families()
    return tuple(sorted(f for family, fonts in families.items() if family != HELD_OUT_FONT_FAMILY for f in fonts))
