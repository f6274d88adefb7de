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


# --------------------------------------------------------------------------------- the stage and suites
APGD_SUITE = b'''
name = "a"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "apgd-t"
kind = "apgd"
eps = "4/255"
steps = 5
target = "top-k"
target_classes = 12
'''


def test_apgd_stage_parses_runs_and_writes_its_columns():
    from test_stages import CLASSES, make_batch, make_ctx

    suite = parse_suite(APGD_SUITE, where="suite a")
    stage = suite.stages[1]
    suite.check(CLASSES)  # 12 target classes, but CIFAR-10 has 9 besides the label
    info = stage.describe()
    assert info["kind"] == "apgd" and info["target"] == "top-k" and info["loss"] == "dlr"
    assert "clamped to 9" in info["note"]
    ctx, batch = make_ctx(), make_batch(4)
    out = stage.apply(batch.images, batch, ctx)
    cols = out.columns
    assert set(cols) == {"attack_success", "linf", "l2", "attack_loss", "queries", "grad_zero", "loss_trace"}
    assert all(len(v) == 4 for v in cols.values())
    assert max(cols["linf"]) <= 4 / 255 * (1 + 1e-5) and out.images.shape == batch.images.shape
    traces = [[float(v) for v in row.split(" ")] for row in cols["loss_trace"]]
    assert all(len(t) == 6 for t in traces)  # steps + 1 = 6 iterates, fewer than 11
    again = stage.apply(batch.images, batch, ctx)
    assert torch.equal(out.images, again.images) and again.columns == cols


def test_trace_strings_keep_eleven_evenly_spaced_points():
    from typobench.stages.apgd import trace_strings

    rows = trace_strings(torch.arange(202.0).view(2, 101))
    assert rows[0] == " ".join(str(v) for v in range(0, 101, 10)) and rows[1].startswith("101 111 ")


@pytest.mark.parametrize(("change", "field"), [
    ((b'eps = "4/255"', b"eps = 0"), "stage[1].eps"),
    ((b'target = "top-k"', b'target = "top-3"'), "stage[1].target"),
    ((b"steps = 5", b"steps = 0"), "stage[1].steps"),
    ((b"steps = 5", b'steps = 5\nloss = "cw"'), "stage[1].loss"),
    ((b"steps = 5", b"steps = 5\neot_draws = 0"), "stage[1].eot_draws"),
    ((b"steps = 5", b'steps = 5\nattack_on = "both"'), "stage[1].attack_on"),
    ((b"steps = 5", b"steps = 5\nstep_size = 0.1"), "stage[1].step_size"),
])
def test_bad_apgd_field_names_the_field(change, field):
    with pytest.raises(UsageError) as info:
        parse_suite(APGD_SUITE.replace(*change), where="suite a")
    assert field in str(info.value) and "\n" not in str(info.value)


def test_dlr_with_too_few_classes_is_reported_before_running():
    suite = parse_suite(APGD_SUITE, where="suite a")
    with pytest.raises(UsageError, match="apgd-t.*4 classes"):
        suite.check(["a", "b", "c"])


def test_read_apgd_config_reads_a_sub_table_and_defaults_apply():
    from typobench.suites.apgd_schema import read_apgd_config
    from typobench.suites.fields import Table

    cfg = read_apgd_config(Table({"eps": 0.5, "norm": "l2", "target": "top-k"}, "stage[2].attacks[0]", "suite w"))
    assert cfg == APGDConfig(eps=0.5, norm="l2", loss="dlr", targeted=True)
    with pytest.raises(UsageError, match=r"stage\[2\]\.attacks\[0\]\.restarts"):
        read_apgd_config(Table({"eps": 0.5, "restarts": 0}, "stage[2].attacks[0]", "suite w"))
    with_defaults = APGD_SUITE.replace(b"steps = 5\n", b"") + b'[defaults.apgd]\nsteps = 7\nrestarts = 2\n'
    assert parse_suite(with_defaults).stages[1].config.steps == 7


# ----------------------------------------------------------------------------------------- EOT in PGD
class Noisy(nn.Module):
    """``model(x + 0.05 * noise)``, a new draw per call from its own generator; records each input."""

    def __init__(self, model: nn.Module, seed: int = 0) -> None:
        super().__init__()
        self.model, self.g, self.inputs = model, seeded(seed), []

    def forward(self, x: Tensor) -> Tensor:
        self.inputs.append(x.detach().clone())
        return self.model(x + 0.05 * torch.randn(x.shape, generator=self.g))


def test_pgd_eot_steps_along_the_gradient_averaged_over_draws(trained):
    model, x, y = trained
    x, y = x[:16], y[:16]
    cfg = PGDConfig(eps=8 / 255, step_size=2 / 255, steps=1, random_start=False, eot_draws=3)
    noisy = Noisy(model).eval()
    pgd(noisy, x, y, cfg)
    assert len(noisy.inputs) == 6  # 3 draws at the start point, 3 at the one step
    replay = Noisy(model).eval()
    grads = []
    for _ in range(3):  # the same three draws, one gradient each
        xr = x.clone().requires_grad_(True)
        F.cross_entropy(replay(xr), y, reduction="sum").backward()
        grads.append(xr.grad)
    expected = (x + 2 / 255 * torch.stack(grads).mean(0).sign()).clamp(0, 1)
    assert torch.allclose(noisy.inputs[3], expected, atol=1e-6)
    assert not torch.equal(grads[0].sign(), torch.stack(grads).mean(0).sign())  # one draw would step elsewhere


def test_pgd_eot_on_a_deterministic_model_equals_plain_pgd(trained):
    model, x, y = trained
    plain = pgd(model, x, y, PGDConfig(eps=1.5 / 255, step_size=0.5 / 255, steps=5), generator=seeded())
    eot = pgd(model, x, y, PGDConfig(eps=1.5 / 255, step_size=0.5 / 255, steps=5, eot_draws=2), generator=seeded())
    for a, b in zip((plain.adv, plain.success, plain.best_loss, plain.steps_to_success),
                    (eot.adv, eot.success, eot.best_loss, eot.steps_to_success)):
        assert torch.equal(a, b)


def test_pgd_stage_description_names_eot_only_when_used():
    text = b'''
name = "p"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "pgd"
kind = "pgd"
eps = "8/255"
step_size = "2/255"
steps = 3
'''
    assert "eot_draws" not in parse_suite(text).stages[1].describe()
    assert parse_suite(text + b"eot_draws = 4\n").stages[1].describe()["eot_draws"] == 4
    with pytest.raises(UsageError, match=r"stage\[1\]\.eot_draws"):
        parse_suite(text + b"eot_draws = 0\n")
    with pytest.raises(UsageError, match="eot_draws"):
        PGDConfig(eps=0.1, step_size=0.1, steps=1, eot_draws=0)
