"""Text, PGD and paste stages on a real (tiny) classifier: determinism, targets, masks."""

from __future__ import annotations

import torch

from typobench.models.classifier import ImageClassifier
from typobench.heads import ZeroShotHead
from typobench.models import load_model
from typobench.core.runtime import Runtime
from typobench.stages.base import Batch, RunContext
from typobench.suites import read_suite, parse_suite

from helpers import images_batch

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_ctx(seed: int = 0) -> RunContext:
    loaded = load_model("tiny-rn")
    embeddings = torch.nn.functional.normalize(torch.randn(len(CLASSES), 32, generator=torch.Generator().manual_seed(1)), dim=-1)
    head = ZeroShotHead.from_clip(loaded.model, embeddings)
    classifier = ImageClassifier.of(loaded, head)
    return RunContext(classifier=classifier, classnames=CLASSES, runtime=Runtime(torch.device("cpu")), seed=seed)


def make_batch(n: int = 6, offset: int = 0) -> Batch:
    labels = torch.arange(offset, offset + n) % len(CLASSES)
    return Batch(images_batch(n), labels, list(range(offset, offset + n)), [f"id{i}" for i in range(offset, offset + n)])


def stage(suite: str, name: str):
    return next(s for s in read_suite(suite).stages if s.name == name)


def test_text_stage_is_deterministic_per_sample_not_per_batch():
    ctx, wrong = make_ctx(), stage("random-wrong-label", "random-wrong-label")
    full = make_batch(6)
    out_full = wrong.apply(full.images, full, ctx)
    half = Batch(full.images[3:], full.labels[3:], full.indices[3:], full.sample_ids[3:])
    out_half = wrong.apply(half.images, half, ctx)
    assert torch.equal(out_full.images[3:], out_half.images)
    assert out_full.columns["text"][3:] == out_half.columns["text"]
    other_seed = wrong.apply(full.images, full, make_ctx(seed=1))
    assert other_seed.columns["placement"] != out_full.columns["placement"]


def test_wrong_label_writes_a_wrong_class_and_targets_it():
    ctx, wrong = make_ctx(), stage("random-wrong-label", "random-wrong-label")
    batch = make_batch(10)
    out = wrong.apply(batch.images, batch, ctx)
    for text, label, target in zip(out.columns["text"], batch.labels.tolist(), out.targets.tolist()):
        assert text in CLASSES and text != CLASSES[label] and CLASSES[target] == text


def test_true_label_sticker_writes_the_label_and_changes_only_its_box():
    ctx, sticker = make_ctx(), stage("true-label-sticker", "true-label-sticker")
    batch = make_batch(4)
    out = sticker.apply(batch.images, batch, ctx)
    assert out.columns["text"] == [CLASSES[y] for y in batch.labels.tolist()]
    assert out.targets is None
    changed = (out.images != batch.images).any(dim=1, keepdim=True)
    assert not (changed & ~out.mask).any()
    fractions = torch.tensor(out.columns["pixel_fraction"])
    assert torch.allclose(fractions, out.mask.flatten(1).float().mean(1), atol=0.02)


def test_pgd_stage_respects_sticker_masks_and_eps():
    ctx = make_ctx()
    suite = read_suite("fort2021-cifar10")
    stages = {s.name: s for s in suite.stages}
    batch = make_batch(4)
    for name in ("clean", "sticker-1", "pgd-1"):
        batch.outputs[name] = stages[name].apply(
            batch.outputs[stages[name].source].images if stages[name].source in batch.outputs else batch.images, batch, ctx)
    sticker = batch.outputs["sticker-1"]
    inside = stages["pgd-sticker-only"].apply(sticker.images, batch, ctx)
    outside = stages["pgd-outside-sticker"].apply(sticker.images, batch, ctx)
    mask = sticker.mask.expand_as(sticker.images)
    assert torch.equal(inside.images[~mask], sticker.images[~mask])
    assert torch.equal(outside.images[mask], sticker.images[mask])
    assert (outside.images - sticker.images).abs().max() <= 4 / 255 + 1e-6
    assert torch.equal(inside.targets, batch.outputs["pgd-1"].targets)


def test_paste_stage_moves_the_donor_sticker_to_the_next_image():
    ctx = make_ctx()
    suite = parse_suite(b'''
name = "paste"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "s"
kind = "text"
words = "true-label"
[stage.style]
box = "white"
size = 0.2
[[stage]]
name = "p"
kind = "paste"
donor_stage = "s"
mask_stage = "s"
''')
    batch = make_batch(3)
    for st in suite.stages:
        batch.outputs[st.name] = st.apply(batch.images, batch, ctx)
    pasted, donor = batch.outputs["p"], batch.outputs["s"]
    mask = donor.mask[1].expand(3, -1, -1)
    assert torch.equal(pasted.images[0][mask], donor.images[1][mask])
    assert torch.equal(pasted.images[0][~mask], batch.images[0][~mask])
    assert pasted.columns["donor"] == ["id1", "id2", "id0"]


def test_goh_words_change_about_seven_percent_of_pixels_at_224():
    """Goh et al.: 8 copies change 6.4-10% of the pixels of a 224 px image."""
    suite = read_suite("goh2021-imagenet")
    ctx = make_ctx()
    ctx.classnames = [s.target for s in suite.stages[1:]]
    batch = Batch(torch.full((2, 3, 224, 224), 0.5), torch.zeros(2, dtype=torch.long), [0, 1], ["a", "b"])
    fractions = [torch.tensor(s.apply(batch.images, batch, ctx).columns["pixel_fraction"]).mean().item()
                 for s in suite.stages[1:]]
    assert all(0.06 <= f <= 0.11 for f in fractions), fractions
    assert 0.065 <= sum(fractions) / len(fractions) <= 0.095


def test_blank_stage_replaces_every_image_and_the_words_alone_suite_writes_on_it():
    ctx, batch = make_ctx(), make_batch(4)
    white, words = stage("words-alone", "white"), stage("words-alone", "words-alone")
    assert white.describe()["colour"] == "#ffffff" and words.source == "white"
    blank = white.apply(batch.images, batch, ctx)
    assert blank.images.shape == batch.images.shape and bool((blank.images == 1).all())
    batch.outputs["white"] = blank
    written = words.apply(blank.images, batch, ctx)
    # Only the letters differ from white: dark pixels, each image its own true class name.
    dark = (written.images < 0.5).flatten(1).float().mean(1)
    assert bool(((dark > 0) & (dark < 0.2)).all())
    assert written.columns["text"] == [CLASSES[int(y)] for y in batch.labels]


def test_blank_stage_colour_is_read_and_a_bad_one_names_the_field():
    import pytest

    from typobench.core.errors import UsageError

    grey = parse_suite('name = "g"\n[[stage]]\nname = "grey"\nkind = "blank"\ncolour = "#808080"\n'.encode(), "g.toml")
    assert grey.stages[0].colour == (128, 128, 128)
    with pytest.raises(UsageError, match=r"suite g: stage\[0\]\.colour: colour 'greenish' is not a colour"):
        parse_suite('name = "g"\n[[stage]]\nname = "grey"\nkind = "blank"\ncolour = "greenish"\n'.encode(), "g.toml")
