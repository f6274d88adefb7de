"""toyclip's training batches: CIFAR-10 photos, photos with written words, words alone, colours.

Every written word is drawn by the project's own renderer (``render_patch``), placed by its placement
policies and composited by its compositor, exactly as the attack suites do; only the *distribution*
of words and styles is defined here (``recipes.MixtureConfig``, which also describes each kind of
sample). A batch is a pure function of ``(seed, step)``: a resumed or repeated run sees the same images
and captions, whatever the worker or process that made them.

Each sample carries a caption and a *key*, the thing its caption names (``"cat"``, ``"lamp"``,
``"color:red"``). Captions with different templates but the same key ("a photo of a cat.", "a blurry
photo of the cat.") describe the same content; the contrastive loss treats every text with an
image's key as a positive for that image (``loss.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import torch

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.data.templates import CIFAR_TEMPLATES
from typobench.toyclip.draws import contrasting, jitter, pick, random_rgb, rgb_tensor, some_colour
from typobench.toyclip.made_up_words import near_miss, random_string
from typobench.toyclip.photos import PhotoBank
from typobench.toyclip.recipes import KINDS, MixtureConfig
from typobench.toyclip.vocabulary import COLOUR_TEMPLATES, COLOUR_WORDS, COLOURS, INK_COLOURS, training_fonts
from typobench.typographic import TextStyle, build_canvas, composite, create_placement, render_patch
from typobench.typographic.geometry import Position

IMAGE_SIZE = 64

# A rendered word and where it goes: the RGBA patch [4, h, w] of ``render_patch`` and its top-left (x, y).
Placed = tuple[torch.Tensor, Position]


@dataclass
class Batch:
    images: torch.Tensor  # [B, 3, 64, 64] in [0, 1]
    captions: list[str]
    keys: list[str]
    kinds: list[str]
    words: list[str | None]  # what is written on each image (None: nothing)


@dataclass
class _Sample:
    """One training sample before the words are composited onto the batch."""

    image: torch.Tensor  # [3, 64, 64] in [0, 1], without its written word
    caption: str
    key: str
    word: str | None = None  # what is written on the image
    placed: list[Placed] = field(default_factory=list)  # the written word, if any


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
        early = self.config.early_fractions or self.config.fractions
        self.early_kind_p = np.array([early[k] for k in KINDS])
        self.random_placement = create_placement("random")
        self.centre_placement = create_placement("fixed", x=0.5, y=0.5)
        self.classnames = list(CIFAR10_CLASSNAMES)
        self.vocabulary = self.config.words
        self.word_templates = self.config.word_templates
        self.other_words = [w for w in self.vocabulary if w not in self.classnames]

    # -- one batch ----------------------------------------------------------------------------
    def batch(self, step: int, batch_size: int) -> Batch:
        """``batch_size`` samples of step ``step``: images ``[batch_size, 3, 64, 64]`` in [0, 1] and their texts."""
        rng = np.random.default_rng([self.seed, int(step)])
        kind_p = self.early_kind_p if step < self.config.early_steps else self.kind_p
        kinds = [KINDS[int(k)] for k in rng.choice(len(KINDS), size=batch_size, p=kind_p)]
        images = torch.empty(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)
        samples = [self._sample(kind, f"{step}/{i}", rng) for i, kind in enumerate(kinds)]
        for i, sample in enumerate(samples):
            images[i] = sample.image
        placements = [sample.placed for sample in samples]
        if any(placements):
            images = composite(images, build_canvas(placements, (IMAGE_SIZE, IMAGE_SIZE)))
        return Batch(images=images, captions=[s.caption for s in samples], keys=[s.key for s in samples],
                     kinds=kinds, words=[s.word for s in samples])

    def _sample(self, kind: str, sample_id: str, rng: np.random.Generator) -> _Sample:
        return SAMPLERS[kind](self, sample_id, rng)

    # -- one sample of each kind --------------------------------------------------------------
    def _photo_sample(self, written: bool, sample_id: str, rng: np.random.Generator) -> _Sample:
        """A photo, blank-stickered (kind ``photo``) or with a word written on it (``photo_word``)."""
        cfg = self.config
        image, label = self._photo(rng)
        if not written and cfg.occluder_p > 0 and rng.random() < cfg.occluder_p:
            self._occlude(image, rng)
        classname = self.classnames[label]
        sample = _Sample(image, caption="", key=classname)
        if written:
            sample.word, names_word, placed = self._write_on_photo(sample_id, rng)
            sample.placed.append(placed)
            if names_word:
                sample.key = sample.word
        if sample.key == classname or rng.random() >= cfg.word_template_p:
            template = pick(CIFAR_TEMPLATES, rng)
        else:
            template = pick(self.word_templates, rng)
        sample.caption = template.format(sample.key)
        return sample

    def _write_on_photo(self, sample_id: str, rng: np.random.Generator) -> tuple[str, bool, Placed]:
        """The word written on a photo, whether its caption names it, and the word placed."""
        cfg = self.config
        pool = self.classnames if rng.random() < cfg.class_word_p else self.other_words
        word = pick(pool, rng)
        scrap = pool is self.other_words and cfg.random_string_p > 0 and rng.random() < cfg.random_string_p
        if scrap:
            # (The near-miss draw only happens when the option is on: older presets' batches stay identical.)
            near = cfg.near_miss_p > 0 and rng.random() < cfg.near_miss_p
            word = near_miss(pick(self.classnames, rng), rng) if near else random_string(rng)
        style = self._photo_word_style(word, rng)
        patch = render_patch(style, IMAGE_SIZE)
        record = self.random_placement.place(patch.shape[-2:], (IMAGE_SIZE, IMAGE_SIZE), sample_id, seed=self.seed)
        caption_p = cfg.word_caption_p
        if word not in self.classnames and cfg.other_word_caption_p is not None:
            caption_p = cfg.other_word_caption_p
        names_word = not scrap and rng.random() < caption_p  # a made-up word is never captioned
        return word, names_word, (patch, record.positions[0])

    def _word_sample(self, sample_id: str, rng: np.random.Generator) -> _Sample:
        """A vocabulary word alone on a plain, gradient or noise background, captioned with it."""
        cfg = self.config
        if cfg.word_class_p is None:
            word = pick(self.vocabulary, rng)
        else:
            pool = self.classnames if rng.random() < cfg.word_class_p else self.other_words
            word = pick(pool, rng)
        light = None if rng.random() < 0.4 else bool(rng.random() < 0.6)
        image, base = self._background(rng, light)
        fill = contrasting(base, rng)
        size = int(rng.integers(cfg.word_px[0], cfg.word_px[1] + 1))
        style = TextStyle(word, font=self._font(rng), size=size, fill=fill)
        if rng.random() < 0.3:
            style = style.replace(stroke=contrasting(fill, rng, 0.25), stroke_width=0.08)
        placed = self._place(style, sample_id, rng)
        caption = pick(self.word_templates, rng).format(word)
        return _Sample(image, caption, key=word, word=word, placed=[placed])

    def _colour_word_sample(self, sample_id: str, rng: np.random.Generator) -> _Sample:
        """A colour word in coloured ink on a light background, captioned with the ink or the word."""
        cfg = self.config
        word = pick(COLOUR_WORDS, rng)
        ink_name = pick(INK_COLOURS, rng)
        image, _ = self._background(rng, light=True)
        size = int(rng.integers(cfg.word_px[0], cfg.word_px[1] + 1))
        style = TextStyle(word, font=self._font(rng), size=size, fill=jitter(COLOURS[ink_name], rng, 20))
        placed = self._place(style, sample_id, rng)
        if rng.random() < cfg.ink_caption_p:
            key = f"color:{ink_name}"
            caption = pick(COLOUR_TEMPLATES, rng).format(ink_name)
        else:
            key = word
            caption = pick(self.word_templates, rng).format(word)
        return _Sample(image, caption, key, word=word, placed=[placed])

    def _colour_sample(self, rng: np.random.Generator) -> _Sample:
        """A patch of one named colour, full frame or a large rectangle, captioned with the colour."""
        name = pick(list(COLOURS), rng)
        colour = rgb_tensor(jitter(COLOURS[name], rng, 20))
        noise = torch.from_numpy(rng.normal(0, 0.02, size=(3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32))
        if rng.random() < 0.5:
            image = (colour + noise).clamp(0, 1)
        else:
            image, _ = self._background(rng, light=name not in ("white", "yellow") and rng.random() < 0.7)
            h, w = (int(v) for v in rng.integers(int(0.5 * IMAGE_SIZE), IMAGE_SIZE + 1, size=2))
            y, x = int(rng.integers(0, IMAGE_SIZE - h + 1)), int(rng.integers(0, IMAGE_SIZE - w + 1))
            image[:, y:y + h, x:x + w] = (colour + noise[:, y:y + h, x:x + w]).clamp(0, 1)
        return _Sample(image, pick(COLOUR_TEMPLATES, rng).format(name), key=f"color:{name}")

    # -- pieces -------------------------------------------------------------------------------
    def _font(self, rng: np.random.Generator) -> str:
        return self.fonts[int(rng.choice(len(self.fonts), p=self.font_p))]

    def _photo(self, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """A random training photo, flipped and shifted, upsampled to ``[3, 64, 64]`` in [0, 1]; its label."""
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
        """A plain, gradient or smooth-noise background ``[3, 64, 64]`` and its mean colour."""
        if light is None:
            base = random_rgb(rng)
        elif light:
            base = (255, 255, 255) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(190, 256, size=3))
        else:
            base = tuple(int(v) for v in rng.integers(0, 90, size=3))
        base_t = rgb_tensor(base)
        image = base_t.expand(3, IMAGE_SIZE, IMAGE_SIZE).clone()
        u = rng.random()
        if u < 0.3:  # gradient towards a nearby colour
            other = rgb_tensor(jitter(base, rng, 50))
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
        """A word's style on a photo: its size, one of ``style_p``'s styles (:data:`WORD_STYLES`), font, rotation."""
        cfg = self.config
        size = int(rng.integers(cfg.photo_word_px[0], cfg.photo_word_px[1] + 1))
        name = list(cfg.style_p)[int(rng.choice(len(cfg.style_p), p=np.array(list(cfg.style_p.values()))))]
        font = self._font(rng)
        rotation = float(rng.uniform(-cfg.rotation_max, cfg.rotation_max)) if rng.random() < cfg.rotation_p else 0.0
        return WORD_STYLES[name](TextStyle(word, font=font, size=size, rotation=rotation), rng)

    def _occlude(self, image: torch.Tensor, rng: np.random.Generator) -> None:
        """A blank sticker in place on ``image`` ``[3, 64, 64]``: a random-colour rectangle (bordered half
        the time), as large as a word."""
        h, w = int(rng.integers(7, 19)), int(rng.integers(14, 57))
        y, x = int(rng.integers(0, IMAGE_SIZE - h + 1)), int(rng.integers(0, IMAGE_SIZE - w + 1))
        fill = some_colour(rng, named_p=0.6)
        image[:, y:y + h, x:x + w] = rgb_tensor(fill)
        if rng.random() < 0.5:
            border = rgb_tensor(contrasting(fill, rng, 0.25))
            inner = image[:, y + 1:y + h - 1, x + 1:x + w - 1].clone()
            image[:, y:y + h, x:x + w] = border
            image[:, y + 1:y + h - 1, x + 1:x + w - 1] = inner

    def _place(self, style: TextStyle, sample_id: str, rng: np.random.Generator) -> Placed:
        """``style`` rendered and placed at the centre or at random (half the time each)."""
        patch = render_patch(style, IMAGE_SIZE)
        policy = self.centre_placement if rng.random() < 0.5 else self.random_placement
        record = policy.place(patch.shape[-2:], (IMAGE_SIZE, IMAGE_SIZE), sample_id, seed=self.seed)
        return patch, record.positions[0]


# What makes each kind of sample (``recipes.KINDS``): (mixture, sample id, rng) -> the sample.
SAMPLERS: dict[str, Callable[[Mixture, str, np.random.Generator], _Sample]] = {
    "photo": lambda mixture, sample_id, rng: mixture._photo_sample(False, sample_id, rng),
    "photo_word": lambda mixture, sample_id, rng: mixture._photo_sample(True, sample_id, rng),
    "word": Mixture._word_sample,
    "colour_word": Mixture._colour_word_sample,
    "colour": lambda mixture, sample_id, rng: mixture._colour_sample(rng),
}


# -- the styles of a word written on a photo (``MixtureConfig.style_p``): a base style (word, font, size,
# rotation) -> its colours, outline or sticker box, drawn from rng in a fixed order ----------------------------
def _outline_style(style: TextStyle, rng: np.random.Generator) -> TextStyle:
    """Outlined text, like the suites' wrong-label and control stages."""
    fill = some_colour(rng, named_p=0.7)
    stroke = contrasting(fill, rng, 0.25)
    width = 0.08 if rng.random() < 0.5 else float(rng.uniform(0.05, 0.15))
    return style.replace(fill=fill, stroke=stroke, stroke_width=width)


def _box_style(style: TextStyle, rng: np.random.Generator) -> TextStyle:
    """Text on a sticker box, like the true-label sticker."""
    box = (255, 255, 255) if rng.random() < 0.5 else random_rgb(rng)
    fill = (0, 0, 0) if box == (255, 255, 255) and rng.random() < 0.6 else contrasting(box, rng)
    padding = float(rng.uniform(0.08, 0.25))
    return style.replace(fill=fill, box=box, padding=padding)


def _plain_style(style: TextStyle, rng: np.random.Generator) -> TextStyle:
    """Plain ink."""
    return style.replace(fill=some_colour(rng, named_p=0.6))


WORD_STYLES: dict[str, Callable[[TextStyle, np.random.Generator], TextStyle]] = {
    "outline": _outline_style, "box": _box_style, "plain": _plain_style,
}
