"""toyclip: the multi-positive loss, the training mixture, and the shipped weights' behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.models import load_model
from typobench.models.builtin import WEIGHTS_DIR, get_builtin_model
from typobench.results import read_results
from typobench.run import RunConfig, execute
from typobench.suites import load_suite
from typobench.toyclip.data import (
    CONTROL_WORDS,
    HELD_OUT_FONT,
    HELD_OUT_FONT_FAMILY,
    KINDS,
    PRESETS,
    STROOP_NEUTRAL,
    VOCABULARIES,
    VOCABULARY,
    Mixture,
    MixtureConfig,
    PhotoBank,
    preset,
    training_fonts,
)
from typobench.toyclip.loss import dedupe_captions, multi_positive_contrastive_loss
from typobench.typographic import list_font_families, resolve_font

CARD = Path(__file__).resolve().parents[1] / "typobench" / "models" / "TOYCLIP_CARD.md"


# -- loss -------------------------------------------------------------------------------------


def test_dedupe_keeps_first_seen_order_and_marks_every_positive():
    captions = ["a photo of a cat.", "a photo of a dog.", "a photo of a cat.", "a blurry photo of a cat."]
    keys = ["cat", "dog", "cat", "cat"]
    unique, positives = dedupe_captions(captions, keys)
    assert unique == ["a photo of a cat.", "a photo of a dog.", "a blurry photo of a cat."]
    # Both cat captions (two templates) are positives of every cat image; the duplicate is encoded once.
    assert positives.tolist() == [[True, False, True], [False, True, False], [True, False, True], [True, False, True]]


def test_a_caption_with_two_keys_is_rejected():
    with pytest.raises(ValueError, match="two keys"):
        dedupe_captions(["a photo of a red."] * 2, ["red", "color:red"])


def test_with_distinct_captions_the_loss_is_clips():
    torch.manual_seed(0)
    images = F.normalize(torch.randn(6, 8), dim=1)
    texts = F.normalize(torch.randn(6, 8), dim=1)
    logits = 10.0 * images @ texts.t()
    target = torch.arange(6)
    clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    ours = multi_positive_contrastive_loss(images, texts, torch.eye(6, dtype=torch.bool), 10.0)
    assert ours.item() == pytest.approx(clip.item(), rel=1e-6)


def test_duplicate_captions_are_positives_not_negatives():
    # Four images of two classes, each exactly on its class's text. With deduplicated captions and a
    # multi-positive target the loss reaches its floor, the entropy of the uniform targets (log 2 for
    # each text's two images, halved by the symmetric mean): no image is pushed away from its caption.
    texts = torch.eye(2)
    images = texts[[0, 0, 1, 1]]
    unique, positives = dedupe_captions(["a cat.", "a cat.", "a dog.", "a dog."], ["cat", "cat", "dog", "dog"])
    assert unique == ["a cat.", "a dog."]
    floor = math.log(2) / 2
    assert multi_positive_contrastive_loss(images, texts, positives, 100.0).item() == pytest.approx(floor, abs=1e-4)
    # Swapping the classes' images costs far more than the floor.
    swapped = multi_positive_contrastive_loss(texts[[1, 1, 0, 0]], texts, positives, 100.0).item()
    assert swapped > floor + 10
    # The gradient vanishes at the aligned configuration: duplicates do not act as negatives.
    images = images.clone().requires_grad_()
    multi_positive_contrastive_loss(images, texts, positives, 100.0).backward()
    assert images.grad.abs().max().item() < 1e-4


def test_loss_gradients_are_finite_and_check_shapes():
    images = F.normalize(torch.randn(5, 4), dim=1).requires_grad_()
    texts = F.normalize(torch.randn(3, 4), dim=1).requires_grad_()
    positives = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=torch.bool)
    multi_positive_contrastive_loss(images, texts, positives, 20.0).backward()
    assert torch.isfinite(images.grad).all() and torch.isfinite(texts.grad).all()
    with pytest.raises(ValueError, match="at least one positive"):
        multi_positive_contrastive_loss(images, texts, torch.zeros(5, 3, dtype=torch.bool), 20.0)
    with pytest.raises(ValueError, match="must be"):
        multi_positive_contrastive_loss(images, texts, positives[:4], 20.0)


# -- training mixture -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos() -> PhotoBank:
    rng = np.random.default_rng(0)
    return PhotoBank(rng.integers(0, 256, size=(50, 32, 32, 3), dtype=np.uint8), np.arange(50) % 10, source="synthetic")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_batches_are_a_pure_function_of_seed_and_step(photos, name):
    a = Mixture(photos, preset(name), seed=3).batch(7, 48)
    b = Mixture(photos, preset(name), seed=3).batch(7, 48)
    assert torch.equal(a.images, b.images) and a.captions == b.captions and a.keys == b.keys
    assert a.images.shape == (48, 3, 64, 64) and 0 <= a.images.min() and a.images.max() <= 1
    other_step = Mixture(photos, preset(name), seed=3).batch(8, 48)
    other_seed = Mixture(photos, preset(name), seed=4).batch(7, 48)
    assert not torch.equal(a.images, other_step.images)
    assert not torch.equal(a.images, other_seed.images)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_mixture_covers_every_kind_with_consistent_captions(photos, name):
    mixture = Mixture(photos, preset(name), seed=0)
    seen = {kind: 0 for kind in KINDS}
    key_of: dict[str, str] = {}
    for step in range(4):
        batch = mixture.batch(step, 64)
        for kind, caption, key, word in zip(batch.kinds, batch.captions, batch.keys, batch.words):
            seen[kind] += 1
            assert key_of.setdefault(caption, key) == key  # a caption always names the same thing
            assert (word is None) == (kind in ("photo", "colour"))
            if kind == "photo":
                assert key in CIFAR10_CLASSNAMES
            if word is not None:
                assert word in mixture.config.words
            if key.startswith("color:"):
                assert "color" in caption
    assert all(count > 0 for count in seen.values()), seen


def test_held_out_font_and_control_words_never_reach_training():
    fonts = training_fonts()
    assert "sans-bold" in fonts  # the suites' font is trained on
    assert not set(fonts) & set(list_font_families()[HELD_OUT_FONT_FAMILY])
    assert resolve_font(HELD_OUT_FONT).family == HELD_OUT_FONT_FAMILY
    for vocabulary in VOCABULARIES.values():
        assert not set(vocabulary) & set(CONTROL_WORDS)
        assert STROOP_NEUTRAL not in vocabulary
        assert set(CIFAR10_CLASSNAMES) <= set(vocabulary)
    assert VOCABULARIES["broad"] == VOCABULARY
    # The suites agree with the training code on what was held out.
    control = [s for s in load_suite("control-word").stages if s.name == "control-word"][0]
    assert set(control.words.words) == set(CONTROL_WORDS)
    held_out = [s for s in load_suite("held-out-font").stages if s.name == "held-out-font"][0]
    assert held_out.style.base.font == HELD_OUT_FONT


def test_mixture_config_round_trips_and_rejects_bad_fractions():
    config = MixtureConfig(word_caption_p=0.7)
    assert MixtureConfig.from_dict(config.to_dict()) == config
    assert preset("r1") == MixtureConfig()
    for name in PRESETS:
        assert MixtureConfig.from_dict(preset(name).to_dict()) == preset(name)
    assert preset("r2", ink_caption_p=0.4).ink_caption_p == 0.4
    with pytest.raises(ValueError, match="unknown mixture preset"):
        preset("r9")
    with pytest.raises(ValueError, match="vocabulary"):
        MixtureConfig(vocabulary="huge")
    with pytest.raises(ValueError, match="sum to 1"):
        MixtureConfig(fractions={"photo": 0.5, "photo_word": 0.3, "word": 0.1, "colour_word": 0.1, "colour": 0.1})


# -- shipped weights ----------------------------------------------------------------------------


def test_toyclip_is_a_shipped_open_clip_modified_resnet():
    builtin = get_builtin_model("toyclip")
    assert builtin is not None and builtin.weights == WEIGHTS_DIR / "toyclip.safetensors"
    assert builtin.weights.stat().st_size < 30e6
    loaded = load_model("toyclip")
    assert not loaded.random_init and loaded.checkpoint_sha256
    assert type(loaded.model.visual).__name__ == "ModifiedResNet" and hasattr(loaded.model.visual, "layer4")
    assert loaded.image_size == (64, 64)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    # The model card names the weights it describes.
    assert loaded.checkpoint_sha256 in CARD.read_text()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toyclip")
    config = RunConfig(model="toyclip", dataset="cifar10-sample", suite="default", limit=300, batch_size=100,
                       out=str(tmp / "run"), cache_dir=str(tmp / "cache"), device="cpu", seed=0)
    outcome = execute(config, progress=False)
    return {stage["name"]: stage for stage in read_results(outcome.out_dir)["stages"]}


def test_shipped_weights_classify_read_and_break_on_the_sample(default_run):
    # 300 bundled CIFAR-10 test images; thresholds sit far from the measured values (the model card's
    # numbers) so that no platform's rounding can flip them. The shipped weights do NOT meet the issue's
    # sticker-lift, written-class and control-word thresholds (see the model card), so those are not
    # asserted here; what they do show is asserted.
    clean = default_run["clean"]["accuracy"]
    assert clean > 0.45  # chance is 0.10
    assert default_run["true-label-sticker"]["accuracy"] > clean - 0.05  # a true-label sticker does not hurt
    wrong = default_run["random-wrong-label"]
    # A random wrong class would be predicted about (1 - accuracy) / 9 = 3% of the time by chance.
    assert wrong["targeted_success"]["value"] > 0.08  # the written class wins far above chance
    assert wrong["accuracy"] < clean - 0.15
    assert default_run["pgd-linf-2"]["accuracy"] < 0.2
