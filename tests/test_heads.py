"""Zero-shot and linear-probe heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from typobench.core.cache import TensorCache
from typobench.heads import ZeroShotHead, train_linear_probe, zeroshot_class_embeddings
from typobench.heads.build import build_zeroshot_head
from typobench.heads.linear_probe import fit_logistic_regression, predict
from typobench.models import load_model

CLASSES = ["cat", "dog", "ship"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]


def test_zeroshot_embeddings_equal_direct_computation():
    loaded = load_model("tiny-rn")
    got = zeroshot_class_embeddings(loaded.model, loaded.tokenizer, CLASSES, TEMPLATES, batch_size=4)
    with torch.no_grad():
        expected = []
        for name in CLASSES:
            tokens = loaded.tokenizer([t.format(name) for t in TEMPLATES])
            emb = F.normalize(loaded.model.encode_text(tokens), dim=-1).mean(0)
            expected.append(F.normalize(emb, dim=-1))
    assert torch.allclose(got, torch.stack(expected), atol=1e-6)


def test_zeroshot_logits_use_the_models_own_temperature():
    loaded = load_model("tiny-rn")
    with torch.no_grad():
        loaded.model.logit_scale.fill_(torch.log(torch.tensor(7.0)))
    embeddings = F.normalize(torch.randn(3, 32), dim=-1)
    head = ZeroShotHead.from_clip(loaded.model, embeddings)
    features = torch.randn(4, 32)
    expected = 7.0 * F.normalize(features, dim=-1) @ embeddings.T
    assert torch.allclose(head(features), expected, atol=1e-5)


def test_zeroshot_head_is_cached_by_content(tmp_path):
    loaded = load_model("tiny-rn")
    cache = TensorCache(tmp_path)
    head1, info1 = build_zeroshot_head(loaded, CLASSES, TEMPLATES, cache)
    head2, info2 = build_zeroshot_head(loaded, CLASSES, TEMPLATES, cache)
    assert not info1["cached"] and info2["cached"]
    assert torch.equal(head1.class_embeddings, head2.class_embeddings)
    _, other_classes = build_zeroshot_head(loaded, ["cat", "dog", "boat"], TEMPLATES, cache)
    _, other_templates = build_zeroshot_head(loaded, CLASSES, TEMPLATES[:1], cache)
    _, other_model = build_zeroshot_head(load_model("tiny-rn", seed=1), CLASSES, TEMPLATES, cache)
    keys = {info1["cache_key"], other_classes["cache_key"], other_templates["cache_key"], other_model["cache_key"]}
    assert len(keys) == 4
    assert not (other_classes["cached"] or other_templates["cached"] or other_model["cached"])


def _blobs(n: int, classes: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=generator) * 4
    labels = torch.arange(n) % classes
    return centres[labels] + torch.randn(n, dim, generator=generator), labels


def test_linear_probe_separates_a_separable_problem():
    x, y = _blobs(600, 5, 16, seed=0)
    head, report = train_linear_probe(x, y, 5)
    x_test, y_test = _blobs(300, 5, 16, seed=0)
    assert (head(x_test).argmax(1) == y_test).float().mean() > 0.99
    assert report.n_val > 0 and report.weight_decay in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def test_linear_probe_is_at_chance_on_shuffled_labels():
    x, y = _blobs(1000, 5, 16, seed=1)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    head, _ = train_linear_probe(x, shuffled, 5)
    x_test, _ = _blobs(1000, 5, 16, seed=2)
    fresh_labels = torch.randint(0, 5, (1000,), generator=torch.Generator().manual_seed(3))
    accuracy = (head(x_test).argmax(1) == fresh_labels).float().mean().item()
    assert 0.13 < accuracy < 0.27


def test_linear_probe_fit_in_chunks_matches_the_full_batch_fit():
    x, y = _blobs(900, 4, 8, seed=4)
    whole = fit_logistic_regression(x, y, 4, 1e-2)
    chunked = fit_logistic_regression(x, y, 4, 1e-2, chunk_rows=128)  # 8 chunks, the last one short
    for a, b in zip(whole, chunked):
        assert torch.allclose(a, b, atol=1e-4)


def test_linear_probe_rows_fit_without_a_copy_equal_fitting_the_copy():
    x, y = _blobs(400, 3, 8, seed=5)
    rows = torch.arange(0, 400, 3)
    by_rows = fit_logistic_regression(x, y, 3, 1e-3, max_iter=40, rows=rows)
    copied = fit_logistic_regression(x[rows], y[rows], 3, 1e-3, max_iter=40)
    assert all(torch.equal(a, b) for a, b in zip(by_rows, copied))


def test_linear_probe_loss_never_sees_more_than_a_chunk_of_rows(monkeypatch):
    x, y = _blobs(500, 3, 8, seed=6)
    seen: list[int] = []
    original = F.cross_entropy

    def counting(logits, target, *args, **kwargs):
        seen.append(logits.shape[0])
        return original(logits, target, *args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", counting)
    fit_logistic_regression(x, y, 3, 1e-3, max_iter=2, chunk_rows=96)
    assert max(seen) == 96
    assert sum(seen[:6]) == 500  # one loss evaluation: 5 chunks of 96 and one of 20 cover every row once
    assert len(seen) % 6 == 0


def test_linear_probe_predict_in_chunks_equals_one_matmul():
    x, y = _blobs(300, 4, 8, seed=7)
    weight, bias = fit_logistic_regression(x, y, 4, 1e-3, max_iter=20)
    rows = torch.arange(1, 300, 2)
    expected = (F.normalize(x[rows], dim=-1) @ weight.T + bias).argmax(1)
    assert torch.equal(predict(x, rows, weight, bias, chunk_rows=7), expected)
    assert predict(x, rows[:0], weight, bias).shape == (0,)
