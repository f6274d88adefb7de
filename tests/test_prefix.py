"""The learned prompt prefix (Defense-Prefix): encoding, training, the file, the command — on tiny random models."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.data import sample_hash
from typobench.defenses.prefix import (
    load_prefix,
    placeholder_prefix,
    placeholder_token_id,
    prefixed_text_features,
    prefixed_zeroshot_weights,
    save_prefix,
    slot_text,
    token_embedding_of,
    train_prefix,
    train_prefix_on_dataset,
)
from typobench.heads.zeroshot import zeroshot_class_embeddings
from typobench.models import load_model
from typobench.suites import read_suite

from helpers import synthetic_dataset

TEXTS = ["a photo of a x cat.", "x dog", "a blurry photo of the big x automobile."]


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn")


@pytest.fixture(scope="module")
def wrong_label():
    suite = read_suite("random-wrong-label")
    return next(stage for stage in suite.stages if stage.name == "random-wrong-label")


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(n=32, classes=4, seed=3)


def _train(loaded, data, attack, **options):
    options = {"steps": 25, "lr": 0.05, "seed": 0, "batch_size": 16, **options}
    return train_prefix_on_dataset(loaded, data, attack=attack, **options)


@pytest.mark.parametrize("name", ["tiny-rn", "tiny-vit"])
def test_placeholder_prefix_gives_exactly_encode_text(name):
    loaded = load_model(name)
    with torch.no_grad():
        ours = prefixed_text_features(loaded.model, loaded.tokenizer, TEXTS, placeholder_prefix(loaded))
        theirs = loaded.model.encode_text(loaded.tokenizer(TEXTS))
        other = prefixed_text_features(loaded.model, loaded.tokenizer, TEXTS, torch.randn_like(placeholder_prefix(loaded)))
    assert torch.equal(ours, theirs)
    assert not torch.allclose(other, theirs)  # the hook does replace the placeholder's embedding


def test_custom_text_layout_and_gradient_reach_the_prefix():
    """CustomTextCLIP keeps its tower in ``model.text``: same equality, and gradients flow to the prefix only."""
    model = open_clip.create_model("typobench-tiny-vit", force_custom_text=True).eval()
    tokenizer = open_clip.get_tokenizer("typobench-tiny-vit")
    assert token_embedding_of(model) is model.text.token_embedding
    row = model.text.token_embedding.weight[placeholder_token_id(tokenizer)].detach().clone()
    with torch.no_grad():
        assert torch.equal(prefixed_text_features(model, tokenizer, TEXTS, row), model.encode_text(tokenizer(TEXTS)))
    prefix = row.clone().requires_grad_(True)
    prefixed_text_features(model, tokenizer, TEXTS, prefix).square().sum().backward()
    assert prefix.grad is not None and prefix.grad.abs().sum() > 0


def test_multi_token_prefix_fills_each_slot_in_order(tiny_rn):
    """A [T, width] prefix: T placeholders per prompt, row t at the t-th; swapping rows changes the features."""
    rows = torch.randn(2, token_embedding_of(tiny_rn.model).embedding_dim, generator=torch.Generator().manual_seed(0))
    texts = [f"a photo of a {slot_text(2)} cat."]
    with torch.no_grad():
        forward = prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, texts, rows)
        swapped = prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, texts, rows.flip(0))
        same = prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, texts, rows.clone())
    assert torch.equal(forward, same) and not torch.allclose(forward, swapped)


def test_prompts_without_the_slot_or_cut_short_are_usage_errors(tiny_rn):
    prefix = placeholder_prefix(tiny_rn)
    with pytest.raises(UsageError, match="placeholder 'x' 0 times"):
        prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, ["a photo of a cat."], prefix)
    long = "a black and white photo of the very very very big and very small " + slot_text(1) + " cat."  # past 16 tokens
    with pytest.raises(UsageError, match="context length"):
        prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, [long], prefix)
    with pytest.raises(UsageError, match="does not fit this text tower"):
        prefixed_text_features(tiny_rn.model, tiny_rn.tokenizer, TEXTS, torch.zeros(1, 7))


def test_prefixed_weights_are_built_like_the_zeroshot_head(tiny_rn):
    """Same normalise-average-renormalise as heads.zeroshot: the placeholder prefix gives the plain class
    embeddings of the prompts that hold the placeholder word, [C, D] and unit norm."""
    classes, templates = ["cat", "dog", "ship"], ["a photo of a {}.", "a bad photo of the {}."]
    with torch.no_grad():
        ours = prefixed_zeroshot_weights(tiny_rn, classes, templates, placeholder_prefix(tiny_rn))
    plain = zeroshot_class_embeddings(tiny_rn.model, tiny_rn.tokenizer, [f"x {c}" for c in classes], templates)
    assert ours.shape == (3, 32) and torch.equal(ours, plain)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(3))


def test_training_lowers_the_loss_is_seeded_and_leaves_the_model_alone(tiny_rn, data, wrong_label):
    before = tiny_rn.fingerprint()
    tiny_rn._fingerprint = None  # recompute from the weights after training, not from the memo
    first = _train(tiny_rn, data, wrong_label)
    again = _train(tiny_rn, data, wrong_label)
    other = _train(tiny_rn, data, wrong_label, seed=1)
    assert float(first.metadata["final_loss"]) < float(first.metadata["initial_loss"])
    assert len(first.losses) == 25 and first.prefix.shape == (1, 32)
    assert torch.equal(first.prefix, again.prefix) and first.losses == again.losses
    assert not torch.equal(first.prefix, other.prefix)
    tiny_rn._fingerprint = None
    assert tiny_rn.fingerprint() == before
    assert all(p.requires_grad for p in tiny_rn.model.parameters())  # the freeze is undone


def test_training_images_are_the_stages_own(tiny_rn, data, wrong_label):
    """A clean stage writes nothing to learn from; the stage of a run is the one the training draws."""
    clean = next(stage for stage in read_suite("random-wrong-label").stages if stage.kind == "clean")
    images = torch.stack([data[i][0] for i in range(4)])
    with pytest.raises(UsageError, match="cannot make training images"):
        train_prefix(tiny_rn, images, torch.tensor(data.labels[:4]), data.sample_ids[:4], data.classnames,
                     data.templates, attack=clean, steps=1)


def test_save_load_round_trip_and_wrong_model_refused(tmp_path, tiny_rn, data, wrong_label):
    result = _train(tiny_rn, data, wrong_label, steps=3)
    path = save_prefix(tmp_path / "prefix.safetensors", result)
    back = load_prefix(path, expect_model=tiny_rn)
    assert torch.equal(back.prefix, result.prefix) and back.losses == pytest.approx(result.losses)
    meta = back.metadata
    assert meta["model_fingerprint"] == tiny_rn.fingerprint()
    assert meta["train_sample_hash"] == sample_hash(data.sample_ids)
    assert json.loads(meta["classnames"]) == data.classnames and len(meta["classnames_sha256"]) == 64
    assert (meta["steps"], meta["seed"], meta["dataset"], meta["split"]) == ("3", "0", data.name, data.split)
    assert json.loads(meta["attack"])["name"] == "random-wrong-label"
    with pytest.raises(UsageError, match="was trained for model tiny-rn"):
        load_prefix(path, expect_model=load_model("tiny-vit"))
    with pytest.raises(UsageError, match="not found"):
        load_prefix(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_text("not a tensor file")
    with pytest.raises(UsageError, match="not a safetensors file"):
        load_prefix(tmp_path / "junk.safetensors")


def test_cli_train_prefix_writes_a_loadable_file(tmp_path, tiny_rn, capsys):
    out = tmp_path / "p.safetensors"
    code = main(["defense", "train-prefix", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--split", "test",
                 "--limit", "20", "--steps", "2", "--batch-size", "8", "--device", "cpu", "--out", str(out)])
    assert code == 0 and str(out) in capsys.readouterr().out
    result = load_prefix(out, expect_model=tiny_rn)
    assert result.metadata["dataset"] == "cifar10-sample" and result.metadata["train_count"] == "20"
    assert main(["defense", "train-prefix", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--split", "test",
                 "--stage", "nope", "--out", str(tmp_path / "q.safetensors")]) == 2
    assert "has no stage 'nope'" in capsys.readouterr().err and not (tmp_path / "q.safetensors").exists()
