"""The sparse linear probe (issue 18, item 5): the L1 solver is exact (KKT), the path reaches the target
sparsity and grows as the penalty falls, it finds the planted features, and it is deterministic."""

from __future__ import annotations

import pytest
import torch

from typobench.neurons.probes.sparse_probe import (
    compare_probes,
    fista_l1,
    l1_path,
    lam_max,
    probe_split,
    soft_threshold,
    standardise,
    weight_table,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The problems here are tiny: one thread spares them OpenMP's start-up cost on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def planted(n: int = 300, units: int = 40, classes: int = 4, per_class: int = 3, shift: float = 1.5, seed: int = 0):
    """Activations [n, units] where class c raises units c*per_class .. c*per_class+per_class-1 by ``shift``
    (the planted features); every other unit is noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    x = torch.randn(n, units, generator=generator)
    for c in range(classes):
        x[labels == c, c * per_class:(c + 1) * per_class] += shift
    return x, labels


def graded(n: int = 400, units: int = 60, classes: int = 4, seed: int = 1):
    """Every unit carries a little class signal, of decreasing strength: the L1 path adds units gradually."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    strength = torch.linspace(1.2, 0.05, units)
    pattern = torch.randn(classes, units, generator=generator)
    return torch.randn(n, units, generator=generator) + pattern[labels] * strength, labels


def test_soft_threshold_is_the_l1_proximal_map():
    values = torch.tensor([-3.0, -0.5, 0.0, 0.2, 2.0])
    assert torch.equal(soft_threshold(values, 1.0), torch.tensor([-2.0, 0.0, 0.0, 0.0, 1.0]))


def test_solution_satisfies_the_lasso_optimality_conditions():
    """At the optimum, |gradient| <= lam where a weight is 0 and gradient = -lam * sign(w) where it is not."""
    x, labels = planted(n=120, units=12, classes=3)
    x, = standardise(x)
    lam = 0.3 * lam_max(x, labels, 3)
    fit = fista_l1(x, labels, 3, lam, max_iter=20000, tol=1e-12)
    weight = fit.weight.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ weight.T + fit.bias, labels)
    grad, = torch.autograd.grad(loss, weight)
    active = fit.weight != 0
    assert active.any() and (~active).any()
    assert (grad[~active].abs() <= lam * (1 + 1e-4)).all()
    assert torch.allclose(grad[active], -lam * fit.weight[active].sign(), atol=1e-5 * lam + 1e-8)
    assert fit.iterations < 20000


def test_lam_max_is_the_smallest_penalty_with_no_weight():
    x, labels = planted()
    x, = standardise(x)
    top = lam_max(x, labels, 4)
    assert (fista_l1(x, labels, 4, top).weight == 0).all()
    assert (fista_l1(x, labels, 4, 0.9 * top).weight != 0).any()


def test_path_reaches_about_the_target_neurons_per_class():
    x, labels = graded()
    x, = standardise(x)
    for target in (3.0, 6.0):
        path = l1_path(x, labels, 4, target)
        chosen = path.chosen
        assert abs(chosen.per_class - target) <= 1.0, (target, [f.per_class for f in path.fits])
        counts = (chosen.weight != 0).sum(1)
        assert counts.float().mean().item() == pytest.approx(chosen.per_class)
        assert counts.max() <= 3 * target  # no class hoards the budget


def test_path_uses_more_neurons_as_the_penalty_falls():
    x, labels = graded()
    x, = standardise(x)
    path = l1_path(x, labels, 4, 15.0, ratio=0.85)
    fits = sorted(path.fits, key=lambda f: -f.lam)
    used = [f.neurons_used for f in fits]
    assert used[0] == 0 and used[-1] > 10 and len(used) >= 6
    rises = sum(b >= a for a, b in zip(used, used[1:]))
    assert rises >= 0.8 * (len(used) - 1), used  # monotone-ish: the L1 path may drop a unit now and then


def test_recovers_the_planted_features():
    x, labels = planted()
    x, = standardise(x)
    chosen = l1_path(x, labels, 4, 3.0).chosen
    for c in range(4):
        own = set(range(3 * c, 3 * c + 3))
        used = set(torch.nonzero(chosen.weight[c] > 0).view(-1).tolist())
        assert used and used <= own, (c, used)  # every positive weight of class c is on its own features
    support = set(torch.nonzero((chosen.weight != 0).any(0)).view(-1).tolist())
    assert support <= set(range(12))  # no noise unit is used at all


def test_sparse_probe_is_deterministic_and_scored_on_held_out_images():
    x, labels = planted(n=200, seed=3)
    first = compare_probes(x[:100], labels[:100], x[100:], labels[100:], 4, seed=0)
    second = compare_probes(x[:100], labels[:100], x[100:], labels[100:], 4, seed=0)
    assert torch.equal(first.path.chosen.weight, second.path.chosen.weight)
    assert [f.lam for f in first.path.fits] == [f.lam for f in second.path.fits]
    assert first.sparse_accuracy == second.sparse_accuracy and first.full_accuracy == second.full_accuracy
    assert first.sparse_accuracy > first.chance + 0.3  # the planted features separate the held-out images
    assert first.full_accuracy > first.chance + 0.3


def test_weight_table_lists_only_non_zero_weights_by_class():
    x, labels = planted()
    x, = standardise(x)
    chosen = l1_path(x, labels, 4, 3.0).chosen
    names = [f"layer4:{u}" for u in range(x.shape[1])]
    rows = weight_table(chosen, names, ["a", "b", "c", "d"])
    assert len(rows) == int((chosen.weight != 0).sum())
    assert all(row["weight"] != 0 and row["neuron"] == names[row["unit"]] for row in rows)
    assert [row["class"] for row in rows] == sorted(row["class"] for row in rows)


def test_probe_split_is_disjoint_and_stratified():
    labels = [i % 5 for i in range(103)]
    train, held_out = probe_split(labels, 60, seed=4)
    assert not set(train) & set(held_out) and len(train) + len(held_out) == 60
    for c in range(5):
        assert abs(sum(labels[i] == c for i in train) - sum(labels[i] == c for i in held_out)) <= 1
    assert probe_split(labels, 60, seed=4) == (train, held_out)
