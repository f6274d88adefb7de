"""toyclip: the multi-positive loss, the training mixture, and the shipped weights' behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.models import load_model
from typobench.models.builtin import WEIGHTS_DIR, get_builtin_model
from helpers import sample_run
from typobench.harness.config import RunConfig
from typobench.suites import read_suite
from typobench.toyclip.loss import dedupe_captions, multi_positive_contrastive_loss
from typobench.toyclip.mixture import Mixture
from typobench.toyclip.photos import PhotoBank
from typobench.toyclip.recipes import KINDS, PRESETS, MixtureConfig, preset
from typobench.toyclip.vocabulary import (
    CONTROL_WORDS,
    HELD_OUT_FONT,
    HELD_OUT_FONT_FAMILY,
    STROOP_NEUTRAL,
    VOCABULARIES,
    VOCABULARY,
    training_fonts,
)
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
            if word is not None and word not in mixture.config.words:  # a made-up word on a photo
                assert kind == "photo_word" and mixture.config.random_string_p > 0
                assert key in CIFAR10_CLASSNAMES and word.lower() not in CONTROL_WORDS  # caption: the photo's class
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
    control = [s for s in read_suite("control-word").stages if s.name == "control-word"][0]
    assert set(control.words.words) == set(CONTROL_WORDS)
    held_out = [s for s in read_suite("held-out-font").stages if s.name == "held-out-font"][0]
    assert held_out.style.base.font == HELD_OUT_FONT


def test_made_up_words_are_word_like_and_never_a_held_out_word():
    from typobench.toyclip.made_up_words import random_string

    rng = np.random.default_rng(0)
    words = [random_string(rng) for _ in range(2000)]
    assert all(3 <= len(w) and w.isalpha() for w in words)
    assert not {w.lower() for w in words} & {*CONTROL_WORDS, STROOP_NEUTRAL, *CIFAR10_CLASSNAMES}
    assert len(set(words)) > 1800  # a different scrap of text almost every time
    assert 0.1 < np.mean([w[0].isupper() for w in words]) < 0.3


def test_near_misses_look_like_a_class_name_but_are_never_one():
    from collections import Counter

    from typobench.toyclip.made_up_words import near_miss

    rng = np.random.default_rng(0)
    for classname in CIFAR10_CLASSNAMES:
        misses = [near_miss(classname, rng) for _ in range(300)]
        assert not set(misses) & {*CIFAR10_CLASSNAMES, *CONTROL_WORDS, STROOP_NEUTRAL}
        # One or two edits: at most two letters lost, the length within two of the class name's.
        assert all(sum((Counter(m) & Counter(classname)).values()) >= len(classname) - 2 for m in misses)
        assert all(abs(len(m) - len(classname)) <= 2 for m in misses)
        assert len(set(misses)) > 25


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


def test_a_curriculum_draws_its_early_fractions_before_early_steps_and_the_others_after(photos):
    words_first = {"photo": 0.0, "photo_word": 0.0, "word": 1.0, "colour_word": 0.0, "colour": 0.0}
    config = preset("r7", early_fractions=words_first, early_steps=3)
    mixture = Mixture(photos, config, seed=0)
    assert set(mixture.batch(2, 32).kinds) == {"word"}
    assert {"photo", "photo_word"} <= set(mixture.batch(3, 32).kinds)
    # Without a curriculum the early steps draw the ordinary fractions: r7's batches are what they were.
    assert Mixture(photos, preset("r7"), seed=0).batch(2, 32).captions != mixture.batch(2, 32).captions
    with pytest.raises(ValueError, match="early_fractions must sum to 1"):
        preset("r7", early_fractions={**words_first, "word": 0.5})


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
    return sample_run("toyclip", tmp_path_factory.mktemp("toyclip"))


def test_shipped_weights_classify_read_and_break_on_the_sample(default_run):
    # 300 bundled CIFAR-10 test images. The model card's values on 8,000 held-out test images: clean 69.6%,
    # sticker 88.7%, wrong label 34.0% (written class 38.3%), control word 48.7%, PGD 2.7% (on these 300, measured:
    # 69.0%, 88.7%, 34.3% (36.9%), 49.0%, 3.3%). The thresholds sit far from them so that no platform's
    # rounding can flip a verdict.
    clean = default_run["clean"]["accuracy"]
    assert clean > 0.55  # chance is 0.10
    assert default_run["true-label-sticker"]["accuracy"] > clean + 0.10  # Fort's lift
    wrong = default_run["random-wrong-label"]
    assert wrong["targeted_success"]["value"] > 0.25  # the written class wins (chance: about 3%)
    assert wrong["accuracy"] < clean - 0.20
    # A non-class word in the same style hurts less than a wrong class name: reading, not only covering.
    assert default_run["control-word"]["accuracy"] > wrong["accuracy"] + 0.08
    assert default_run["pgd-linf-2"]["accuracy"] < 0.10


def test_shipped_weights_name_class_words_written_alone(tmp_path):
    # The card: 77.6% on 8,000 held-out test images (79.0% on these 300 bundled ones); chance is 10%.
    words = sample_run("toyclip", tmp_path, suite="words-alone")
    assert words["words-alone"]["accuracy"] > 0.65


def test_shipped_weights_read_the_word_or_the_ink_as_the_prompt_asks(tmp_path):
    from typobench.experiments.stroop import run_stroop
    from typobench.harness.session import Session

    session = Session.open(RunConfig(model="toyclip", device="cpu", cache_dir=str(tmp_path)), data=False)
    result = run_stroop(session, ["a photo of a {}.", "a photo of the color {}."])
    word_prompt, colour_prompt = result.metrics
    # Card (576 stimuli): word named 99.8%, congruent 100% / ink named 100%.
    assert word_prompt["word_named"]["value"] > 0.7 and word_prompt["congruent_accuracy"]["value"] > 0.7
    assert colour_prompt["incongruent_accuracy"]["value"] > 0.9 and colour_prompt["word_named"]["value"] < 0.1


# -- measurement --------------------------------------------------------------------------------


def _stage(name: str, accuracy: float, written: float | None = None) -> dict:
    stage = {"name": name, "accuracy": accuracy, "ci95": [accuracy - 0.02, accuracy + 0.02], "n": 2000}
    if written is not None:
        stage["targeted_success"] = {"value": written, "ci95": [written - 0.02, written + 0.02], "n": 1800}
    return stage


def test_measure_derives_every_property_from_the_runs_and_judges_it():
    from typobench.toyclip import checks, measure
    from typobench.toyclip import figures as toy_figures

    default = {"suite": {"name": "default"}, "stages": [
        _stage("clean", 0.70), _stage("true-label-sticker", 0.85), _stage("random-wrong-label", 0.30, 0.40),
        _stage("control-word", 0.50), _stage("pgd-linf-2", 0.02)]}
    held_out = {"suite": {"name": "held-out-font"}, "stages": [_stage("clean", 0.70), _stage("held-out-font", 0.4, 0.15)]}
    figures = toy_figures.suite_figures(default, held_out)
    figures.update(toy_figures.probe_figures({"suite": None, "stages": [_stage("clean", 0.72)]},
                                         {"suite": None, "stages": [_stage("clean", 0.71)]}))
    assert figures["sticker_lift"]["value"] == pytest.approx(0.15)
    assert figures["control_ratio"]["value"] == pytest.approx(0.20 / 0.40)  # control drop / wrong-label drop
    # The probe is compared with zero-shot on its own run's images, not with the default suite's clean stage.
    assert figures["probe_minus_zeroshot"]["value"] == pytest.approx(0.01)
    assert figures["written_class"]["ci95"] == [pytest.approx(0.38), pytest.approx(0.42)]

    def metrics(word_named, congruent, incongruent):
        return {k: {"value": v, "ci95": [v, v], "n": 56} for k, v in
                {"word_named": word_named, "congruent_accuracy": congruent, "incongruent_accuracy": incongruent,
                 "neutral_accuracy": 0.9}.items()}

    figures.update(toy_figures.stroop_figures([
        {"prompt": checks.WORD_PROMPT, "metrics": metrics(0.6, 0.8, 0.3)},
        {"prompt": checks.COLOUR_PROMPT, "metrics": metrics(0.1, 0.95, 0.84)},
    ]))
    met = {c["key"]: c["met"] for c in checks.verdicts(figures)}
    assert set(met) == {c.key for c in checks.CHECKS}
    assert met["held_out_font_written"] is False and met["stroop_colour_ink"] is False  # 15% < 20%, 84% < 85%
    assert all(ok for key, ok in met.items() if key not in ("held_out_font_written", "stroop_colour_ink"))
    control = {"suite": {"name": "control-word"}, "stages": [
        _stage("clean", 0.70), _stage("random-wrong-label", 0.30, 0.40),
        {**_stage("control-word", 0.50), "pixel_fraction_mean": 0.05},
        {**_stage("blank-bar", 0.65), "pixel_fraction_mean": 0.08}]}
    figures.update(toy_figures.covering_figures(control))
    assert figures["blank_bar_ratio"]["value"] == pytest.approx(0.05 / 0.40)
    figures.update(toy_figures.words_alone_figure({"suite": {"name": "words-alone"}, "stages": [
        _stage("clean", 0.70), _stage("white", 0.10), _stage("words-alone", 0.34)]}))
    report = {"model": "toyclip", "n": 2000, "seed": 0, "stroop_stimuli": 576, "checks": checks.verdicts(figures),
              "figures": figures, "commands": ["typobench run --suite default"]}
    table = measure.markdown(report)
    assert "covering 8.0% of the pixels on average (the outlined word: 5.0%), leaves 65.0% accuracy: 0.12 of" in table
    assert "| held-out font: classified as the written class | 15.0% | [13.0%, 17.0%] | >= 20.0% | **no** |" in table
    assert "| control-word drop / random-wrong-label drop | 0.50 | - | <= 0.60 | yes |" in table
    assert "the true class name written alone on white is named 34.0% [" in table
    # The ViT is judged on words alone too: a row of its table, not a sentence under it.
    vit_table = measure.markdown({**report, "checks": checks.verdicts(figures, checks.VIT_CHECKS)})
    assert "| words alone on white: the class name named | 34.0% | [32.0%, 36.0%] | >= 60.0% | **no** |" in vit_table
    assert "written alone on white is named" not in vit_table


def test_each_organism_is_judged_by_its_own_thresholds():
    import argparse

    from typobench.toyclip import checks, measure
    from typobench.toyclip import figures as toy_figures

    def checks(model: str, chosen: str | None = None) -> dict[str, float]:
        args = argparse.Namespace(model=model, checks=chosen)
        return {c.key: c.threshold for c in measure.organism_checks(args)}

    vit = checks("typobench-toyclip-vit")
    assert vit == checks("toyclip-vit") == checks("ViT-B-32", "toyclip-vit")
    assert vit["clean"] == 0.55 and vit["written_class"] == 0.25 and vit["held_out_font_written"] == 0.15
    assert vit["stroop_colour_ink"] == 0.80 and vit["control_ratio"] == 0.60 and vit["pgd"] == 0.10
    assert "probe_minus_zeroshot" not in vit and checks("toyclip")["clean"] == 0.65
    assert vit["words_alone"] == 0.60 and "words_alone" not in checks("toyclip")
    with pytest.raises(SystemExit, match="--checks"):
        checks("ViT-B-32")


def test_a_control_word_that_hurts_when_the_wrong_label_does_not_fails_the_ratio():
    from typobench.toyclip import checks, measure
    from typobench.toyclip import figures as toy_figures

    default = {"suite": {"name": "default"}, "stages": [
        _stage("clean", 0.70), _stage("true-label-sticker", 0.70), _stage("random-wrong-label", 0.70, 0.0),
        _stage("control-word", 0.60), _stage("pgd-linf-2", 0.0)]}
    figures = toy_figures.suite_figures(default, {"suite": {"name": "h"}, "stages": [_stage("held-out-font", 0.7, 0.0)]})
    assert figures["control_ratio"]["value"] == math.inf


def _clean_predictions(correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"stage": "clean", "sample_id": [f"img{i}" for i in range(len(correct))],
                         "label": 0, "pred": [0 if ok else 1 for ok in correct]})


def test_probe_vs_zeroshot_interval_is_paired_over_the_same_images():
    from typobench.toyclip import checks, measure
    from typobench.toyclip import figures as toy_figures

    # The probe fixes 30 of 1,000 images and breaks 10: +2 points, and pairing makes the interval narrow
    # (unpaired, two accuracies near 50% on 1,000 images each would give about +-4 points).
    zeroshot = [i % 2 == 0 for i in range(1000)]
    probe = [(not ok) if (i < 60 and i % 2 == 1) or (i < 20 and i % 2 == 0) else ok
             for i, ok in enumerate(zeroshot)]
    assert sum(probe) - sum(zeroshot) == 20
    lo, hi = toy_figures.paired_difference_ci(_clean_predictions(probe), _clean_predictions(zeroshot))
    assert 0.0 < lo < 0.02 < hi < 0.04
    with pytest.raises(ValueError, match="different images"):
        toy_figures.paired_difference_ci(_clean_predictions(probe[:-1]), _clean_predictions(zeroshot))
    with pytest.raises(ValueError, match="same images"):
        toy_figures.probe_figures({"stages": [_stage("clean", 0.7)]}, {"stages": [{**_stage("clean", 0.7), "n": 10}]})


# -- the training script ------------------------------------------------------------------------


def _train(root: Path, out: Path, *extra: str) -> dict:
    from typobench.toyclip.train import build_parser, train

    args = build_parser().parse_args(["--data-root", str(root), "--out", str(out), "--seed", "3", "--steps", "4",
                                      "--batch-size", "24", "--photo-limit", "60", "--workers", "0",
                                      "--eval-every", "0", "--log-every", "2", "--mixture", "r7", *extra])
    return train(args)


def test_training_is_a_pure_function_of_the_seed_even_when_interrupted(cifar10_jpeg_root, tmp_path):
    whole = _train(cifar10_jpeg_root, tmp_path / "whole")
    again = _train(cifar10_jpeg_root, tmp_path / "again")
    # Same seed, same tensors (the file's own hash also covers the wall time written into its metadata).
    assert whole["tensors_sha256"] == again["tensors_sha256"]
    stopped = _train(cifar10_jpeg_root, tmp_path / "parts", "--stop-after", "2")
    assert stopped["stopped_at"] == 2 and not (tmp_path / "parts" / "toyclip.safetensors").exists()
    resumed = _train(cifar10_jpeg_root, tmp_path / "parts")
    assert resumed["tensors_sha256"] == whole["tensors_sha256"]  # an interrupted run ends where a whole one does
    other_seed = _train(cifar10_jpeg_root, tmp_path / "seed4", "--seed", "4")
    assert other_seed["tensors_sha256"] != whole["tensors_sha256"]
    saved = load_model("typobench-toyclip", str(tmp_path / "whole" / "toyclip.safetensors"), device="cpu")
    assert not saved.random_init and saved.image_size == (64, 64)  # loadable like any open_clip checkpoint
    with pytest.raises(SystemExit, match="another recipe"):
        _train(cifar10_jpeg_root, tmp_path / "parts", "--stop-after", "1", "--set", "word_caption_p=0.5")


def test_the_vit_organism_trains_with_the_same_code_as_deterministically(cifar10_jpeg_root, tmp_path):
    first = _train(cifar10_jpeg_root, tmp_path / "a", "--model", "toyclip-vit", "--mixture", "v1")
    second = _train(cifar10_jpeg_root, tmp_path / "b", "--model", "toyclip-vit", "--mixture", "v1")
    assert first["open_clip_name"] == "typobench-toyclip-vit" and first["mixture"]["early_steps"] == 1000
    assert first["tensors_sha256"] == second["tensors_sha256"]
    saved = load_model("typobench-toyclip-vit", str(tmp_path / "a" / "toyclip-vit.safetensors"), device="cpu")
    assert type(saved.model.visual).__name__ == "VisionTransformer" and saved.image_size == (64, 64)
    _train(cifar10_jpeg_root, tmp_path / "c", "--model", "toyclip-vit", "--mixture", "v1", "--stop-after", "2")
    with pytest.raises(SystemExit, match="another recipe"):  # a ResNet run does not resume a ViT's checkpoint
        _train(cifar10_jpeg_root, tmp_path / "c", "--mixture", "v1")


def test_a_distilled_vit_takes_the_teachers_text_tower_and_moves_toward_its_image_embeddings(cifar10_jpeg_root, tmp_path):
    from safetensors.torch import load_file

    from typobench.toyclip.distill import Teacher, is_text_tower

    recipe = _train(cifar10_jpeg_root, tmp_path / "d", "--model", "toyclip-vit", "--distill-from", "toyclip",
                    "--distill-weight", "10", "--fp32")
    assert recipe["distill"]["from"] == "toyclip" and recipe["distill"]["weight"] == 10.0
    again = _train(cifar10_jpeg_root, tmp_path / "d3", "--model", "toyclip-vit", "--distill-from", "toyclip",
                   "--distill-weight", "10", "--fp32")
    assert again["tensors_sha256"] == recipe["tensors_sha256"]  # the teacher's targets add no randomness
    student = load_file(str(tmp_path / "d" / "toyclip-vit.safetensors"))
    teacher = Teacher("toyclip", 10.0, bf16=False)
    theirs = dict(teacher.model.named_parameters())
    text = [n for n in student if is_text_tower(n)]
    assert "token_embedding.weight" in text and "logit_scale" in text
    for name in text:  # copied and frozen: still the teacher's after four steps
        assert torch.equal(student[name], theirs[name].detach().float()), name
    undistilled = _train(cifar10_jpeg_root, tmp_path / "u", "--model", "toyclip-vit", "--fp32")
    assert undistilled["distill"] is None and undistilled["tensors_sha256"] != recipe["tensors_sha256"]
    # The loss is weight x (1 - cos): zero on the teacher's own embeddings, the weight on orthogonal ones.
    images = torch.rand(4, 3, 64, 64)
    target = teacher.embed(images)
    assert teacher.loss(target, images).item() == pytest.approx(0.0, abs=1e-5)
    orthogonal = torch.linalg.qr(torch.randn(target.shape[1], target.shape[1]))[0][:, :4].t()
    orthogonal = orthogonal - (orthogonal * target).sum(1, keepdim=True) * target
    assert teacher.loss(F.normalize(orthogonal, dim=1), images).item() == pytest.approx(10.0, abs=1e-4)
    _train(cifar10_jpeg_root, tmp_path / "d2", "--model", "toyclip-vit", "--distill-from", "toyclip", "--stop-after", "2")
    with pytest.raises(SystemExit, match="another recipe"):  # a distilled checkpoint is not resumed without it
        _train(cifar10_jpeg_root, tmp_path / "d2", "--model", "toyclip-vit", "--stop-after", "3")
