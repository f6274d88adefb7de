"""Neuron cards: the text facet, the dataset examples, and the multimodal test.

* Text facet: every word of a vocabulary (the data set's class names, then a word list) is rendered
  alone, centred on a plain background at the model's input size, in two styles (black ink on white,
  white ink on black; font ``sans-bold``, 20% of the side, shrunk until the word fits 92% of the
  width). A unit's response to a word is its activation (averaged over positions) averaged over the
  two styles.
* Dataset examples: the clean reference images of the run that excite the unit most.
* Multimodal test. For unit u, with a_img the unit's activation on each clean reference image and
  a_txt its response to each vocabulary word:

      z_img[c, u] = (mean of a_img over the images of class c - mean over all images) / std over all images
      s[w, u]     = (a_txt[w, u] - mean over the vocabulary) / std over the vocabulary
      z_txt[w, u] = the same standardisation applied to s[w, u] - mean over all units of s[w, .]

  u is *multimodal for class c* when all of

  1. z_img[c, u] >= tau_image (default 1.0): it responds to photos of c;
  2. z_txt[name of c, u] >= tau_text (default 2.0): it responds to the written name of c;
  3. z_txt[name of c, u] > z_txt[w, u] for every *control* word w -- a word-list word (not a class
     name) whose length is within ``length_slack`` (default 1) characters of the name's: it reads the
     name, not merely "a word this long" (no control of that length: the condition holds vacuously,
     and ``controls`` in the cards table says how many there were);
  4. class c has at least ``min_class_images`` (default 3) reference images (fewer: untestable).

  u is multimodal when it is for at least one class. The same test is applied to every unit of the
  layer, and the fraction that pass (the base rate) is reported next to the blamed units' rate: the
  test is only informative where blamed units beat that rate. Removing the layer-wide part of the word
  response, and condition 3, both guard against the same confound: long words (more ink) excite many
  units, which would otherwise "read" any long class name. The built-in word list has long words
  (8-10 letters) for that reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.harness.pictures import save_figure, plain_text
from typobench.typographic import TextStyle, build_canvas, composite, parse_color, render_patch
from typobench.models.units import NeuronSpace, as_pixels, unit_activations

DEFAULT_WORDS = (
    "table", "cloud", "lamp", "river", "chair", "window", "garden", "pencil", "candle", "ladder",
    "apple", "book", "clock", "door", "flower", "guitar", "hammer", "house", "key", "leaf", "moon", "piano",
    "rain", "shoe", "spoon", "star", "tree", "water", "bottle", "bridge", "money", "music", "paper", "phone",
    "pizza", "shirt", "snow", "sun", "wheel", "road", "red", "blue", "green", "yellow", "black", "white",
    "hello", "free", "love", "sale", "stop", "open", "trash", "iPod", "library", "rifle", "radio", "meow",
    "$$$", "the", "and", "north", "happy", "zebra", "ocean",
    # Long words (8-10 letters), so that long class names ("automobile", "airplane") are not the only
    # words with that much ink: the text facet must not mistake "a lot of text" for reading.
    "basketball", "restaurant", "television", "strawberry", "newspaper", "chocolate", "umbrella", "mountain",
    "computer", "sandwich", "telephone", "adventure", "microscope", "friendship", "playground", "calendar",
    "furniture", "orchestra", "pineapple", "vegetable",
)
WORD_STYLES = (("black", "white"), ("white", "black"))  # (ink, background)
WORD_FONT = "sans-bold"


@dataclass(frozen=True)
class MultimodalTest:
    tau_image: float = 1.0
    tau_text: float = 2.0
    min_class_images: int = 3
    length_slack: int = 1

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "definition": (
            "unit u is multimodal for class c iff z_img[c,u] >= tau_image and z_txt[name(c),u] >= tau_text "
            "and z_txt[name(c),u] exceeds z_txt of every control word (a non-class word of the word list whose "
            "length is within length_slack characters of name(c)) and class c has >= min_class_images clean "
            "reference images; z_img = (class-mean activation - "
            "mean over all reference images) / std over all reference images; z_txt = (activation on the "
            "rendered class name - mean over the vocabulary) / std over the vocabulary, computed after "
            "removing from every word's response the part shared by all units of the layer (ink, length); "
            "activations are averaged over positions, word responses over the rendering styles")}


def read_vocab(path: str | Path) -> list[str]:
    """One word per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--vocab file '{path}' not found: pass a text file with one word per line")
    words = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w and not w.startswith("#")]
    if not words:
        raise UsageError(f"--vocab file '{path}' has no words: put one word per line")
    return words


def vocabulary(classnames: Sequence[str], words: Sequence[str]) -> list[str]:
    """Class names first, then the words; duplicates (case-insensitive) dropped."""
    seen: set[str] = set()
    out = []
    for word in list(classnames) + list(words):
        key = word.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(word.strip())
    return out


def render_word(word: str, side: int, ink: str = "black", background: str = "white") -> Tensor:
    """``word`` alone, centred on a plain background: [3, side, side] in [0, 1]."""
    size = max(1, round(0.2 * side))
    while True:
        patch = render_patch(TextStyle(word, font=WORD_FONT, size=size, fill=ink), side)
        if patch.shape[-1] <= 0.92 * side or size <= 6:
            break
        size = max(6, int(size * 0.85))
    h, w = int(patch.shape[1]), int(patch.shape[2])
    canvas = build_canvas([[(patch, ((side - w) // 2, (side - h) // 2))]], (side, side))
    colour = torch.tensor(parse_color(background), dtype=torch.float32).div(255).view(1, 3, 1, 1)
    return composite(colour.expand(1, 3, side, side).contiguous(), canvas)[0]


def renderable(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """(words the card font can draw, words it cannot)."""
    ok, skipped = [], []
    for word in words:
        try:
            TextStyle(word, font=WORD_FONT)
            ok.append(word)
        except UsageError:
            skipped.append(word)
    return ok, skipped


def word_activations(model: nn.Module, space: NeuronSpace, words: Sequence[str], side: int, *,
                     batch_size: int = 64) -> Tensor:
    """[V, U]: each unit's activation on each word, averaged over the rendering styles."""
    out = []
    chunk_words = max(1, batch_size // len(WORD_STYLES))
    for start in range(0, len(words), chunk_words):
        chunk = words[start:start + chunk_words]
        images = torch.stack([render_word(w, side, ink, bg) for w in chunk for ink, bg in WORD_STYLES])
        acts, _ = unit_activations(model, space, images, batch_size=batch_size)
        out.append(acts.view(len(chunk), len(WORD_STYLES), -1).mean(1))
    return torch.cat(out) if out else torch.zeros(0, space.total)


def zscore(values: Tensor, dim: int = 0) -> Tensor:
    mean = values.mean(dim, keepdim=True)
    std = values.std(dim, unbiased=False, keepdim=True)
    return (values - mean) / std.clamp_min(1e-8)


def text_z(word_acts: Tensor) -> Tensor:
    """z_txt [V, U]: each unit's response to each word, standardised over the vocabulary, after removing
    what every unit shares (a long word covers more pixels and excites the whole layer).

    s = per-unit z over words; c[w] = mean over units of s[w]; z_txt = per-unit z over words of s - c.
    """
    s = zscore(word_acts, 0)
    return zscore(s - s.mean(1, keepdim=True), 0)


def class_image_z(acts: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(z_img [C, U], images per class [C]); classes without images get NaN."""
    mean = acts.mean(0)
    std = acts.std(0, unbiased=False).clamp_min(1e-8)
    counts = torch.bincount(labels, minlength=num_classes).float()
    sums = torch.zeros(num_classes, acts.shape[1]).index_add_(0, labels, acts)
    class_mean = sums / counts.clamp_min(1).unsqueeze(1)
    z = (class_mean - mean) / std
    z[counts == 0] = float("nan")
    return z, counts


def control_words(words: Sequence[str], class_word: Sequence[int], slack: int) -> list[list[int]]:
    """Per class: indices of the non-class words within ``slack`` characters of its name's length."""
    is_class = {i for i in class_word if i >= 0}
    out = []
    for i in class_word:
        if i < 0:
            out.append([])
            continue
        n = len(words[i])
        out.append([j for j, w in enumerate(words) if j not in is_class and abs(len(w) - n) <= slack])
    return out


def control_max(z_txt: Tensor, controls: Sequence[Sequence[int]]) -> Tensor:
    """[C, U]: the highest z_txt of each class's control words (-inf where it has none)."""
    rows = [z_txt[list(c)].max(0).values if len(c) else torch.full((z_txt.shape[1],), -math.inf) for c in controls]
    return torch.stack(rows) if rows else torch.zeros(0, z_txt.shape[1])


def multimodal_pass(z_img: Tensor, z_txt_class: Tensor, counts: Tensor, test: MultimodalTest,
                    z_control: Tensor | None = None) -> Tensor:
    """Bool [C, U]: unit u is multimodal for class c (see the module docstring). ``z_control`` [C, U]:
    the best control word's z per class (:func:`control_max`); None skips condition 3."""
    testable = (counts >= test.min_class_images).unsqueeze(1)
    passed = testable & (z_img >= test.tau_image) & (z_txt_class >= test.tau_text)
    return passed if z_control is None else passed & (z_txt_class > z_control)


@dataclass
class CardFacts:
    neuron: str
    unit: int
    top_words: list[tuple[str, float]]
    top_images: list[int]
    top_image_acts: list[float]
    multimodal_classes: list[str]
    best_class: str
    best_z_image: float
    best_z_text: float
    best_z_control: float
    best_control_word: str
    top_class_image: str
    top_class_image_z: float
    mean_activation: float


def card_facts(space: NeuronSpace, unit: int, img_acts: Tensor, z_img: Tensor, counts: Tensor, vocab: Sequence[str],
               z_txt: Tensor, class_word: Sequence[int], classnames: Sequence[str], passed: Tensor,
               controls: Sequence[Sequence[int]] = (), n_words: int = 8, n_images: int = 6) -> CardFacts:
    z_words = z_txt[:, unit]
    order = torch.argsort(z_words, descending=True)[:n_words]
    acts = img_acts[:, unit]
    top_images = torch.argsort(acts, descending=True)[:n_images]
    zi = z_img[:, unit]
    index = torch.as_tensor(list(class_word), dtype=torch.long)
    zt = torch.where(index >= 0, z_txt[index.clamp_min(0), unit], torch.tensor(float("nan")))
    zt = torch.nan_to_num(zt, nan=-1e9)
    testable = counts >= 1
    score = torch.minimum(torch.nan_to_num(zi, nan=-1e9), zt)
    score[~testable] = -1e9
    best = int(score.argmax())
    top_img_class = int(torch.nan_to_num(zi, nan=-1e9).argmax())
    control = list(controls[best]) if len(controls) > best else []
    strongest = max(control, key=lambda j: float(z_txt[j, unit])) if control else None
    return CardFacts(
        neuron=space.names[unit], unit=unit,
        top_words=[(vocab[int(i)], float(z_words[i])) for i in order],
        top_images=[int(i) for i in top_images], top_image_acts=[float(acts[i]) for i in top_images],
        multimodal_classes=[classnames[c] for c in torch.nonzero(passed[:, unit]).view(-1).tolist()],
        best_class=classnames[best], best_z_image=float(zi[best]), best_z_text=float(zt[best]),
        best_z_control=float(z_txt[strongest, unit]) if strongest is not None else float("nan"),
        best_control_word=vocab[strongest] if strongest is not None else "",
        top_class_image=classnames[top_img_class], top_class_image_z=float(zi[top_img_class]),
        mean_activation=float(acts.mean()),
    )


@plain_text
def save_card(path: Path, facts: CardFacts, images: Tensor, labels: Sequence[int], classnames: Sequence[str],
              side: int, z_img_unit: Tensor, z_txt_class_unit: Tensor, test: MultimodalTest,
              blamed_for: str = "") -> None:
    """The card: top dataset images, top rendered words, the word z-scores and the image/text z of every class."""
    import matplotlib.pyplot as plt  # the Agg backend: typobench.harness.pictures selected it on import

    cols = 6
    fig = plt.figure(figsize=(12, 7.2))
    grid = fig.add_gridspec(3, cols, height_ratios=[1, 1, 1.5], hspace=0.55, wspace=0.3)
    for j in range(cols):
        ax = fig.add_subplot(grid[0, j])
        ax.set_xticks([]), ax.set_yticks([])
        if j < len(facts.top_images):
            i = facts.top_images[j]
            ax.imshow(as_pixels(images[i]).permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_title(f"{classnames[int(labels[i])]}"[:16] + f"\nact {facts.top_image_acts[j]:.3g}", fontsize=7)
        if j == 0:
            ax.set_ylabel("top images", fontsize=8)
    for j in range(cols):
        ax = fig.add_subplot(grid[1, j])
        ax.set_xticks([]), ax.set_yticks([])
        if j < len(facts.top_words):
            word, z = facts.top_words[j]
            ax.imshow(render_word(word, side).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(f"{word}"[:16] + f"\nz {z:.1f}", fontsize=7, color="tab:red" if word in classnames else "black")
        if j == 0:
            ax.set_ylabel("top words", fontsize=8)
    ax = fig.add_subplot(grid[2, :3])
    words = [w for w, _ in facts.top_words][::-1]
    zs = [z for _, z in facts.top_words][::-1]
    ax.barh(range(len(words)), zs, color=["tab:red" if w in classnames else "tab:gray" for w in words])
    ax.set_yticks(range(len(words)))
    ax.set_yticklabels([w[:20] for w in words], fontsize=7)
    ax.axvline(test.tau_text, color="k", ls="--", lw=0.8)
    ax.set_xlabel("text facet z (red: class names)", fontsize=8)
    ax = fig.add_subplot(grid[2, 3:])
    zi = z_img_unit.numpy()
    zt = z_txt_class_unit.numpy()
    ax.scatter(zi, zt, s=10 if len(zi) > 50 else 24, color="tab:blue", alpha=0.7)
    ax.axvline(test.tau_image, color="k", ls="--", lw=0.8)
    ax.axhline(test.tau_text, color="k", ls="--", lw=0.8)
    label_these = set(facts.multimodal_classes) | {facts.best_class}
    if len(classnames) <= 20:
        label_these |= set(classnames)
    for c, name in enumerate(classnames):
        if name in label_these and np.isfinite(zi[c]):
            ax.annotate(name[:14], (zi[c], zt[c]), fontsize=7,
                        color="tab:red" if name in facts.multimodal_classes else "black")
    ax.set_xlabel("image z (class mean)", fontsize=8)
    ax.set_ylabel("text z (class name)", fontsize=8)
    control = (f", best length-matched control '{facts.best_control_word}' z {facts.best_z_control:.1f}"
               if facts.best_control_word else "")
    verdict = (f"MULTIMODAL: {', '.join(facts.multimodal_classes[:4])}" if facts.multimodal_classes
               else "not multimodal")
    verdict += (f" (best {facts.best_class}: z_img {facts.best_z_image:.1f}, z_txt {facts.best_z_text:.1f}"
                f"{control})")
    fig.suptitle(f"{facts.neuron}  {verdict}" + (f"\nblamed for: {blamed_for}" if blamed_for else ""), fontsize=10)
    save_figure(fig, path)


__all__ = ["DEFAULT_WORDS", "CardFacts", "MultimodalTest", "card_facts", "class_image_z", "control_max",
           "control_words", "multimodal_pass",
           "read_vocab", "render_word", "renderable", "save_card", "text_z", "vocabulary", "word_activations", "zscore"]
