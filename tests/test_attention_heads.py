"""Attention heads of ViT towers as units: head-by-head attention, hooks, ablation, direct contributions,
and ``typobench neurons --heads`` (blame, ablation proof, cards) on a tiny random ViT."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch
from torch import nn

from typobench.core.errors import UsageError
from typobench.heads.zeroshot import ZeroShotHead
from typobench.models import load_model
from typobench.models.attention_heads import (
    HeadwiseAttention,
    direct_contributions,
    head_means,
    head_space,
    headwise_attention,
    residual_terms,
)
from typobench.models.classifier import ImageClassifier
from typobench.models.units import ablate, capture, find_layers, unit_activations
from typobench.neurons.blame.attribution import linearised_logits
from typobench.neurons.heads.blame import head_attribution
from typobench.neurons.heads.cards import text_spans

from test_neurons import _neurons, _run, workdir  # noqa: F401 -- the tiny runs and their fixture


@pytest.fixture(scope="module")
def tiny_vit():
    return load_model("tiny-vit", device="cpu")


def _pixels(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _zero_shot(loaded, classes: int = 5, seed: int = 0) -> ImageClassifier:
    """A zero-shot classifier on random unit 'text embeddings' (the tiny text tower is random anyway)."""
    embeddings = nn.functional.normalize(torch.randn(classes, 32, generator=torch.Generator().manual_seed(seed)), dim=1)
    head = ZeroShotHead(embeddings, logit_scale=torch.tensor(50.0))
    return ImageClassifier.of(loaded, head)


def test_headwise_attention_equals_the_fused_attention_and_swaps_back(tiny_vit):
    model = tiny_vit.model
    x = _pixels(4, seed=1)
    space = head_space(model, vit_blocks=2)
    blocks = model.visual.transformer.resblocks
    originals = [block.attn for block in blocks]
    with torch.no_grad():
        fused = model.encode_image(x)
        with headwise_attention(model, space):
            assert all(isinstance(block.attn, HeadwiseAttention) for block in blocks)
            headwise = model.encode_image(x)
    assert [block.attn for block in blocks] == originals  # swapped back on exit
    assert all(isinstance(a, nn.MultiheadAttention) for a in originals)
    assert torch.allclose(headwise, fused, rtol=1e-5, atol=1e-5 * float(fused.abs().max()))
    # batch-second layout (open_clip's older towers): the same numbers from the same weights
    mha = originals[0]
    seq = torch.randn(3, 17, 64, generator=torch.Generator().manual_seed(9))
    lnd = nn.MultiheadAttention(64, mha.num_heads, batch_first=False)
    lnd.load_state_dict(mha.state_dict())
    tokens_first = seq.transpose(0, 1)
    with torch.no_grad():
        expected = lnd(tokens_first, tokens_first, tokens_first, need_weights=False)[0]
        got = HeadwiseAttention(lnd)(tokens_first, tokens_first, tokens_first)[0]
    assert torch.allclose(got, expected, atol=1e-5)


def test_heads_are_units_named_by_block_and_head(tiny_vit):
    model = tiny_vit.model
    space = head_space(model, vit_blocks=2)
    assert space.names == ["resblocks.0.attn:0", "resblocks.0.attn:1", "resblocks.1.attn:0", "resblocks.1.attn:1"]
    assert space.index("resblocks.1.attn:1") == 3 and space.layers[0].unit_size == 32
    assert [l.name for l in head_space(model).layers] == ["resblocks.1.attn"]  # default: the last block
    x = _pixels(3, seed=2)
    classifier = _zero_shot(tiny_vit)
    with headwise_attention(model, space), capture(space) as store, torch.no_grad():
        classifier(x)
    outputs = store["resblocks.1.attn"]
    assert outputs.shape == (3, 17, 2, 32)  # batch, tokens (16 patches + class), heads, d_head
    with headwise_attention(model, space):
        acts, _ = unit_activations(classifier, space, x)
    assert torch.allclose(acts[:, 2:], outputs.norm(dim=-1).mean(1), atol=1e-5)  # activation: mean norm over tokens
    assert find_layers(model).layers[0].name == "resblocks.1.mlp"  # neurons unchanged


def test_head_ablation_equals_zeroing_its_slice_of_out_proj(tiny_vit):
    classifier = _zero_shot(tiny_vit)
    space = head_space(classifier, vit_blocks=2)
    x = _pixels(4, seed=3)
    with torch.no_grad():
        base = classifier(x)
        with headwise_attention(classifier, space), ablate(space, [space.index("resblocks.0.attn:1")]):
            ablated = classifier(x)
        edited = copy.deepcopy(classifier)
        edited.clip_model.visual.transformer.resblocks[0].attn.out_proj.weight[:, 32:64] = 0.0
        expected = edited(x)  # the fused attention, without that head's input to out_proj
    assert (expected - base).abs().max() > 1e-3
    assert torch.allclose(ablated, expected, rtol=1e-4, atol=1e-5)


def test_mean_ablation_sets_the_head_to_its_mean_vector(tiny_vit):
    model = tiny_vit.model
    space = head_space(model, vit_blocks=2)
    x = _pixels(5, seed=4)
    means = head_means(model, space, x, batch_size=2)
    with headwise_attention(model, space), capture(space) as store, torch.no_grad():
        model.encode_image(x)
    before = {name: value.clone() for name, value in store.items()}
    assert torch.allclose(means[2], before["resblocks.1.attn"][:, :, 0].mean((0, 1)), atol=1e-5)
    with headwise_attention(model, space), ablate(space, [2], means), capture(space) as store, torch.no_grad():
        model.encode_image(x)
    after = store["resblocks.1.attn"]
    assert torch.allclose(after[:, :, 0], means[2].expand_as(after[:, :, 0]))
    assert torch.equal(after[:, :, 1], before["resblocks.1.attn"][:, :, 1])
    assert torch.equal(store["resblocks.0.attn"], before["resblocks.0.attn"])  # earlier block untouched


def test_direct_contributions_sum_to_the_image_embedding(tiny_vit):
    model = tiny_vit.model
    x = _pixels(4, seed=5)
    with torch.no_grad():
        embedding = model.encode_image(x)
    for blocks in (1, 2):
        space = head_space(model, vit_blocks=blocks)
        with torch.no_grad(), residual_terms(model, space) as store:
            model.encode_image(x)
        terms = direct_contributions(model, space, store)
        assert terms.heads.shape == (4, 2 * blocks, 32)
        assert ("resblocks.0.attn" in terms.parts) == (blocks == 1)  # a block without head units: one term
        assert {"embeddings", "resblocks.1.attn.bias", "resblocks.1.mlp", "ln_post.bias"} <= set(terms.parts)
        total = terms.heads.sum(1) + terms.rest()
        assert torch.allclose(total, embedding, atol=1e-5 * float(embedding.abs().max()))
        assert terms.heads.abs().sum() > 0.01 * embedding.abs().sum()  # the heads are a real share of it


def test_head_blame_is_the_exact_split_of_the_logit_margin(tiny_vit):
    classifier = _zero_shot(tiny_vit)
    space = head_space(classifier, vit_blocks=2)
    x = _pixels(6, seed=6)
    a, b = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([1, 2, 3, 4, 0, 2])
    with torch.no_grad():
        logits = classifier(x)
    with headwise_attention(classifier, space):
        attribution = head_attribution(classifier, space, x, a, b, batch_size=4)
    rows = torch.arange(6)
    assert torch.allclose(attribution.logits, logits, atol=1e-5)
    assert torch.allclose(attribution.margin, logits[rows, b] - logits[rows, a], atol=1e-5)
    # margin = g . f with g = scale (t_b - t_a) / |f|: the heads' share plus the rest's share
    with torch.no_grad(), residual_terms(classifier, space) as store:
        f = classifier.features(x)
    terms = direct_contributions(classifier, space, store)
    weights = classifier.head.logit_scale * classifier.head.class_embeddings
    g = (weights[b] - weights[a]) / f.norm(dim=1, keepdim=True)
    assert torch.allclose(attribution.attr, torch.einsum("nud,nd->nu", terms.heads, g), atol=1e-5)
    rest = (terms.rest() * g).sum(1)
    assert torch.allclose(attribution.attr.sum(1) + rest, attribution.margin, atol=1e-4)
    again = head_attribution(classifier, space, x, a, b, batch_size=6)
    assert torch.allclose(again.attr, attribution.attr, atol=1e-6)  # batching does not change it
    assert torch.allclose(linearised_logits(classifier, x), logits, atol=1e-5)


def test_text_spans_find_the_directions_the_head_writes():
    generator = torch.Generator().manual_seed(7)
    texts = nn.functional.normalize(torch.randn(12, 16, generator=generator), dim=1)
    # a head writing mostly text 3, then text 7, plus a little noise
    coefficients = torch.randn(200, 2, generator=generator) * torch.tensor([5.0, 2.0])
    contributions = coefficients @ texts[[3, 7]] + 0.05 * torch.randn(200, 16, generator=generator)
    picks = text_spans(contributions, texts, k=5)
    assert [i for i, _ in picks[:2]] == [3, 7] and len(picks) == 5 and len({i for i, _ in picks}) == 5
    shares = [share for _, share in picks]
    assert shares[0] > 0.7 and all(share >= 0 for share in shares)
    assert sum(shares) <= 1.0 + 1e-9  # orthogonal directions: their shares of the variance add up to at most 1
    assert picks == text_spans(contributions, texts, k=5)  # deterministic
    with pytest.raises(UsageError, match="dimensions"):
        text_spans(contributions, texts[:, :8])


def test_heads_of_a_resnet_are_refused():
    resnet = load_model("tiny-rn", device="cpu").model
    with pytest.raises(UsageError, match="VisionTransformer"):
        head_space(resnet)


def test_cli_heads_on_a_tiny_vit_run(workdir):  # noqa: F811 -- the fixture of test_neurons
    run = workdir / "run-tiny-vit"
    if not (run / "results.json").exists():
        run = _run(workdir, "tiny-vit", str(workdir / "mini.toml"))
    outs = [workdir / f"vit-heads-{i}" for i in (1, 2)]
    for out in outs:
        assert _neurons(run, "--out", str(out), "--stage", "sticker", "--heads", "1", "--vit-blocks", "2") == 0
    report = json.loads((outs[0] / "neurons.json").read_text())
    heads = report["heads"]
    assert report["config"]["heads"] == 1 and [l["name"] for l in heads["layers"]] == ["resblocks.0.attn",
                                                                                       "resblocks.1.attn"]
    analysed = heads["analyses"]
    assert analysed and all(len(a["blamed"]) == 1 and a["blamed"][0].split(":")[0].endswith(".attn")
                            for a in analysed)
    for entry in analysed:
        assert set(entry["ablation"]) == {"zero", "mean"} and entry["verdict"]
        # the four heads of the last two blocks, each ranked once
        assert sorted(r["neuron"] for r in entry["blame"]) == ["resblocks.0.attn:0", "resblocks.0.attn:1",
                                                                "resblocks.1.attn:0", "resblocks.1.attn:1"]
    ablation = pd.read_csv(outs[0] / "neurons_ablation.csv")
    head_rows = ablation[ablation.neurons.fillna("").str.contains(r"\.attn:")]
    assert set(head_rows.selection) == {"blamed", "random", "matched"}
    assert not head_rows.neurons.str.contains(r"\.mlp:").any()  # heads and neurons never mixed in one ablation
    blame_csv = pd.read_csv(outs[0] / "neurons_blame.csv")
    assert blame_csv.layer.str.endswith(".attn").any() and blame_csv.layer.str.endswith(".mlp").any()
    cards = heads["cards"]["neurons"]
    assert cards and all(len(c["text_directions"]) == 5 and (outs[0] / c["card"]).stat().st_size > 5000
                         for c in cards)
    assert all(0 <= d["explained_variance"] <= 1 for c in cards for d in c["text_directions"])
    assert "## Attention heads" in (outs[0] / "neurons.md").read_text()
    card_csv = pd.read_csv(outs[0] / "neurons_cards.csv")
    assert card_csv.neuron.str.contains(r"\.attn:").sum() == len(cards)
    again = json.loads((outs[1] / "neurons.json").read_text())["heads"]  # deterministic from the seed
    assert again["analyses"] == heads["analyses"] and again["cards"]["neurons"] == heads["cards"]["neurons"]


def test_cli_heads_on_a_resnet_run_is_a_one_line_usage_error(workdir, capsys):  # noqa: F811
    run = workdir / "run-tiny-rn"
    if not (run / "results.json").exists():
        run = _run(workdir, "tiny-rn", "random-wrong-label")
    assert _neurons(run, "--out", str(workdir / "rn-heads"), "--heads") == 2
    err = capsys.readouterr().err.strip()
    assert "--heads" in err and "VisionTransformer" in err and "\n" not in err
    assert not (workdir / "rn-heads" / "neurons.json").exists()
