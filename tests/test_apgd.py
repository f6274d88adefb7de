"""APGD / APGD-T (typobench.adversarial.apgd), its stage and suite fields, and EOT in PGD, on tiny seeded
conv nets on the CPU. The cross-checks run pyautoattack's own APGD on the same images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from typobench.adversarial.apgd import APGDConfig, apgd, checkpoints
from typobench.adversarial.pgd import PGDConfig, pgd
from typobench.core.errors import UsageError
from typobench.suites import parse_suite

K = 10  # classes: APGD-T needs at least 4, and 10 lets it try 9 targets as AutoAttack does
N = 100  # images attacked in the cross-checks
SIDE = 16


class TinyNet(nn.Module):
    """A classifier of ``[N,3,SIDE,SIDE]`` pixels in [0,1] returning ``[N,classes]`` logits."""

    def __init__(self, classes: int = K) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x - 0.5))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def synthetic(n: int, g: torch.Generator, classes: int = K) -> tuple[Tensor, Tensor]:
    """``[n,3,SIDE,SIDE]`` images in [0,1]: a blocky colour prototype per class plus noise; ``[n]`` labels."""
    y = torch.arange(n) % classes
    protos = F.interpolate(torch.rand(classes, 3, 4, 4, generator=torch.Generator().manual_seed(123)), size=SIDE)
    x = 0.3 + 0.4 * protos[y] + 0.15 * torch.randn(n, 3, SIDE, SIDE, generator=g)
    return x.clamp(0, 1), y


def train(classes: int = K, seed: int = 0) -> tuple[TinyNet, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TinyNet(classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_train, y_train = synthetic(500, g, classes)
    for _ in range(100):
        idx = torch.randint(0, 500, (100,), generator=g)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    x, y = synthetic(N, g, classes)
    return model, x, y


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tensors are tiny, and on a shared machine a second thread waiting for a
    busy core makes each pass some 30 times slower (measured: 7 ms vs 207 ms per forward+backward)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained() -> tuple[TinyNet, Tensor, Tensor]:
    model, x, y = train()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x, y


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``p`` seen on ``n`` trials."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------- cross-check with pyautoattack
# (norm, eps, targeted): each eps leaves the reference's robust accuracy well inside (0.1, 0.9), so the
# comparison can tell a weaker or stronger attack apart.
CROSS = [("linf", 3 / 255, False), ("linf", 3 / 255, True), ("l2", 0.2, False)]


@pytest.mark.parametrize(("norm", "eps", "targeted"), CROSS)
def test_robust_accuracy_agrees_with_pyautoattack(trained, norm, eps, targeted):
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    model, x, y = trained
    steps, targets = 20, 3
    cfg = APGDConfig(eps=eps, norm=norm, steps=steps, loss="dlr" if targeted else "ce", targeted=targeted,
                     target_classes=targets)
    ours = accuracy(model, apgd(model, x, y, cfg, generator=seeded()).adv, y)
    name = "Linf" if norm == "linf" else "L2"
    if targeted:
        ref = APGDAttack_targeted(model, n_iter=steps, norm=name, eps=eps, n_restarts=1, n_target_classes=targets,
                                  seed=0, device="cpu")
    else:
        ref = APGDAttack(model, n_iter=steps, norm=name, eps=eps, n_restarts=1, loss="ce", seed=0, device="cpu")
    theirs = accuracy(model, ref.perturb(x.clone(), y.clone()), y)
    assert 0.1 < theirs < 0.9, f"eps leaves {theirs:.2f} robust: the comparison would say nothing"
    # Two implementations with different random starts differ by sampling noise only: ours must lie in
    # the 95% Wilson interval of the reference's robust accuracy on these N images.
    low, high = wilson(theirs, N)
    assert low <= ours <= high, f"APGD {ours:.2f} vs pyautoattack {theirs:.2f} (interval {low:.2f}-{high:.2f})"


# ------------------------------------------------------------------------------------------ properties
@pytest.mark.parametrize(("norm", "eps"), [("linf", 2 / 255), ("l2", 0.15)])
@pytest.mark.parametrize("targeted", [False, True])
def test_adv_stays_in_the_ball_and_in_unit_range_and_result_is_consistent(trained, norm, eps, targeted):
    model, x, y = trained
    cfg = APGDConfig(eps=eps, norm=norm, steps=10, targeted=targeted, loss="dlr", target_classes=2)
    r = apgd(model, x, y, cfg, generator=seeded())
    delta = (r.adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all() and r.adv.min() >= 0 and r.adv.max() <= 1
    with torch.no_grad():
        assert torch.equal(r.success, model(r.adv).argmax(1) != y)
    assert 0 < r.success.float().mean() < 1
    assert r.trace.shape == (N, 11) and not r.trace.isnan().any()
    assert (r.trace.diff(dim=1) >= 0).all()  # best so far never falls
    clean_wrong = accuracy(model, x, y) < 1
    assert r.queries.min() >= 1 and (r.queries.max() <= 1 + (2 if targeted else 1) * 11)
    assert clean_wrong or r.queries.min() > 1


def test_misclassified_images_are_kept_and_not_attacked(trained):
    model, x, y = trained
    wrong = (y + 1) % K  # every clean image is misclassified against these labels
    r = apgd(model, x, wrong, APGDConfig(eps=2 / 255, steps=5), generator=seeded())
    assert r.success.all() and torch.equal(r.adv, x) and (r.queries == 1).all()


def test_same_seed_same_result_other_seed_other_starts(trained):
    model, x, y = trained
    cfg = APGDConfig(eps=1.5 / 255, steps=8, restarts=2)
    a, b = apgd(model, x, y, cfg, generator=seeded(3)), apgd(model, x, y, cfg, generator=seeded(3))
    assert torch.equal(a.adv, b.adv) and torch.equal(a.trace, b.trace) and torch.equal(a.queries, b.queries)
    c = apgd(model, x, y, cfg, generator=seeded(4))
    assert not torch.equal(a.adv, c.adv)


def test_apgd_100_is_at_least_as_strong_as_pgd_10(trained):
    model, x, y = trained
    eps = 1.5 / 255
    pgd_acc = accuracy(model, pgd(model, x, y, PGDConfig(eps=eps, step_size=eps / 4, steps=10),
                                  generator=seeded()).adv, y)
    apgd_acc = accuracy(model, apgd(model, x, y, APGDConfig(eps=eps, steps=100), generator=seeded()).adv, y)
    assert pgd_acc > 0.1  # PGD-10 leaves something to break
    assert apgd_acc <= pgd_acc


def test_checkpoints_follow_the_paper():
    # p: 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 of 100 steps
    assert list(checkpoints(100)) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert list(checkpoints(10))[:3] == [2, 3, 4]  # whole iterations, at least one apart


# ------------------------------------------------------------------------- classes and configuration
class Constant(nn.Module):
    """Fixed logits ``[N,classes]`` whatever the image (a zero input gradient): never broken."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.register_buffer("logits", torch.arange(classes, 0, -1).float())

    def forward(self, x: Tensor) -> Tensor:
        return self.logits.expand(x.shape[0], -1) + 0 * x.sum(dim=(1, 2, 3))[:, None]


def test_target_classes_are_clamped_on_a_small_data_set():
    classes, steps = 5, 4
    cfg = APGDConfig(eps=0.1, steps=steps, loss="dlr", targeted=True, target_classes=9)
    assert cfg.targets_used(classes) == 4 and cfg.clamps_targets(classes) and not cfg.clamps_targets(10)
    x, y = torch.rand(3, 3, 8, 8, generator=seeded()), torch.zeros(3, dtype=torch.long)
    r = apgd(Constant(classes).eval(), x, y, cfg, generator=seeded())
    assert not r.success.any() and r.grad_zero.all()
    # One clean pass, then one run of steps + 1 evaluations per target class: 4 of them, not 9.
    assert (r.queries == 1 + 4 * (steps + 1)).all()


@pytest.mark.parametrize(("classes", "cfg", "need"), [
    (2, APGDConfig(eps=0.1, loss="dlr"), "3 classes"),
    (3, APGDConfig(eps=0.1, loss="dlr", targeted=True), "4 classes"),
])
def test_dlr_needs_enough_classes(classes, cfg, need):
    x, y = torch.rand(2, 3, 8, 8, generator=seeded()), torch.zeros(2, dtype=torch.long)
    with pytest.raises(UsageError, match=need):
        apgd(Constant(classes).eval(), x, y, cfg)


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(eps=0.0), "eps"), (dict(eps=math.nan), "eps"), (dict(norm="l1"), "norm"), (dict(steps=0), "steps"),
    (dict(restarts=0), "restarts"), (dict(loss="margin"), "loss"), (dict(target_classes=0), "target_classes"),
    (dict(rho=1.5), "rho"), (dict(eot_draws=0), "eot_draws"), (dict(targeted=1), "targeted"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(UsageError, match=field) as info:
        APGDConfig(**{"eps": 0.1, **kwargs})
    assert "\n" not in str(info.value)


def test_eot_on_a_deterministic_model_changes_nothing_but_queries(trained):
    model, x, y = trained
    one = apgd(model, x, y, APGDConfig(eps=1.5 / 255, steps=6), generator=seeded())
    two = apgd(model, x, y, APGDConfig(eps=1.5 / 255, steps=6, eot_draws=2), generator=seeded())
    assert torch.equal(one.adv, two.adv) and torch.equal(2 * one.queries, two.queries)
