"""Backward passes of the ``input`` defense: the differentiable JPEG surrogate (close to PIL's codec, a stronger
adaptive attack than the identity), what each transform records, and the randomised transforms whose draws are
a pure function of (image, EOT draw index)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from typobench.adversarial.common import input_gradient
from typobench.adversarial.pgd import PGDConfig, pgd
from typobench.core.cache import TensorCache
from typobench.core.draws import current_draw, eot_draw
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data.bundled import read_bundled_sample
from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.defenses import BuildContext, Prompts, build_defended, create_defense, parse_defenses, sanity_flags
from typobench.defenses import zeroshot_head
from typobench.defenses.jpeg_approx import CHROMINANCE_TABLE, LUMINANCE_TABLE, jpeg_approx, quantisation_table
from typobench.defenses.pixels import jpeg_reencode
from typobench.models import load_model

CPU = torch.device("cpu")


def _raw(n: int) -> tuple[np.ndarray, torch.Tensor]:
    """``n`` bundled CIFAR-10 test images spread over the 1,000 (all classes): uint8 [n,32,32,3], labels [n]."""
    sample = read_bundled_sample()
    index = np.arange(0, 1000, 1000 // n)[:n]
    return np.array(sample.images[index]), torch.from_numpy(np.array(sample.labels[index]))


def _cifar(n: int, side: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` bundled images [n,3,32,32] in [0,1], or bilinearly resized to ``side``; and their labels [n]."""
    images, labels = _raw(n)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    if side is not None:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
    return x, labels


@pytest.fixture(scope="module")
def toyclip():
    return load_model("toyclip", device="cpu")


def _zeroshot(model, specs):
    """The toyclip zero-shot CIFAR-10 classifier (one template) behind ``specs``."""
    return build_defended(model, parse_defenses(specs), prompts=Prompts(("a photo of a {}.",)),
                          ctx=BuildContext(Runtime(CPU), 64),
                          head=lambda m, prompts: zeroshot_head(m, list(CIFAR10_CLASSNAMES), prompts, TensorCache(None)))


# -- the surrogate's forward pass ----------------------------------------------------------------------


@pytest.mark.parametrize("quality", [10, 50, 75, 90, 100])
def test_quantisation_tables_are_the_ones_pil_writes(quality):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format="JPEG", quality=quality)
    written = Image.open(io.BytesIO(buffer.getvalue())).quantization  # natural order, as libjpeg holds them
    assert list(written[0]) == quantisation_table(LUMINANCE_TABLE, quality).long().flatten().tolist()
    assert list(written[1]) == quantisation_table(CHROMINANCE_TABLE, quality).long().flatten().tolist()


@pytest.mark.parametrize("quality", [50, 75, 90])
def test_the_surrogate_is_close_to_pils_jpeg(quality):
    # Mean absolute error measured on these 20 images at 64 px (toyclip's size): 0.93, 0.85, 0.73 / 255 at
    # quality 50, 75, 90, where the identity (BPDA's other surrogate) is 2.48, 1.69, 1.11 / 255 off. Part of
    # the gap is libjpeg's integer DCT and its 8-bit rounding of input and output, which the surrogate skips.
    x, _ = _cifar(20, side=64)
    real = jpeg_reencode(x, quality)
    error = (real - jpeg_approx(x, quality)).abs().mean()
    assert error < 1.0 / 255 and error < 0.8 * (real - x).abs().mean()


def test_the_surrogate_pads_sizes_that_are_not_whole_blocks_and_crops_back():
    x, _ = _cifar(4)
    x = F.interpolate(x, size=(37, 23), mode="bilinear", align_corners=False).clamp(0, 1)
    approx = jpeg_approx(x, [60, 70, 80, 90])  # one quality per image
    assert approx.shape == x.shape
    real = torch.cat([jpeg_reencode(x[i:i + 1], q) for i, q in enumerate([60, 70, 80, 90])])
    assert (real - approx).abs().mean() < 1.5 / 255  # measured 1.1 / 255


def test_jpeg_scores_the_real_codec_and_takes_a_finite_nonzero_gradient_from_the_surrogate():
    x, _ = _cifar(4, side=64)
    defense = create_defense("input:jpeg=75")
    pixels = x.clone().requires_grad_(True)
    out = defense(pixels)
    assert torch.equal(out.detach(), jpeg_reencode(x, 75))  # the forward pass is exactly the codec's
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((out * weights).sum(), pixels)
    assert torch.isfinite(grad).all() and (grad != 0).float().mean() > 0.9
    assert not torch.allclose(grad, weights, atol=1e-3)  # not the identity's gradient
    identity = create_defense("input:jpeg=75,backward=identity")
    pixels = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((identity(pixels) * weights).sum(), pixels)
    assert torch.equal(grad, weights)


def test_pgd_through_the_surrogate_leaves_lower_accuracy_than_through_the_identity(toyclip):
    # toyclip zero-shot on 64 bundled CIFAR-10 images, L-inf 2/255, 10 steps of 0.5/255. Measured:
    # clean 78.1% behind JPEG 75 either way; PGD leaves 17.2% through the surrogate, 34.4% through the identity.
    images, labels = _raw(64)
    x = torch.stack([toyclip.pixel_transform()(Image.fromarray(image)) for image in images])
    accuracy = {}
    for backward in ("jpeg-approx", "identity"):
        classifier = _zeroshot(toyclip, [f"input:jpeg=75,backward={backward}"]).classifier
        result = pgd(classifier, x, labels, PGDConfig(eps=2 / 255, step_size=0.5 / 255, steps=10),
                     generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            accuracy[backward] = float((classifier(result.adv).argmax(1) == labels).float().mean())
    assert accuracy["jpeg-approx"] <= accuracy["identity"] - 0.1, accuracy


# -- what each transform records, and spec errors ------------------------------------------------------


@pytest.mark.parametrize("spec, backward, bpda, randomised", [
    ("input:blur=1.5", "exact", False, False),
    ("input:downscale=2", "exact", False, False),
    ("input:jpeg=75", "jpeg-approx", True, False),
    ("input:jpeg=75,backward=identity", "identity", True, False),
    ("input:jpeg_range=60+90", "jpeg-approx", True, True),
    ("input:resize_range=0.8+1.0", "exact", False, True),
])
def test_each_transform_records_its_backward_pass(spec, backward, bpda, randomised):
    defense = create_defense(spec)
    record = defense.describe()
    assert (record["backward"], record["bpda"], record["randomised"]) == (backward, bpda, randomised)
    assert defense.randomised is randomised


@pytest.mark.parametrize("spec, message", [
    ("input:jpeg=75,backward=idenity", r"field 'backward': 'idenity' is not one of jpeg-approx, identity \(did you mean identity"),
    ("input:blur=1,backward=identity", r"field 'backward': 'identity' is not one of exact"),
    ("input:jpeg_range=60", r"field 'jpeg_range': expected two integers LO\+HI, got '60'"),
    ("input:jpeg_range=60.5+90", r"field 'jpeg_range': expected two integers"),
    ("input:jpeg_range=90+60", r"field 'jpeg_range': expected 1 <= LO <= HI <= 100, got 90\+60"),
    ("input:resize_range=0.5+1.5", r"field 'resize_range': expected 0.1 <= LO <= HI <= 1.0"),
    ("input:resize_range=a+b", r"field 'resize_range': expected two numbers"),
    ("input:resize_rang=0.5+1", r"unknown field 'resize_rang': did you mean resize_range"),
])
def test_bad_backward_and_range_specs_are_one_line_naming_the_field(spec, message):
    with pytest.raises(UsageError, match=message) as error:
        create_defense(spec)
    assert "\n" not in str(error.value) and f"--defense '{spec}'" in str(error.value)


def test_a_suite_table_gives_a_range_as_a_list():
    defense = create_defense({"kind": "input", "resize_range": [0.75, 1.0]})
    assert defense.spec == "input:resize_range=0.75+1.0" and defense.describe()["scale_range"] == [0.75, 1.0]


# -- randomised transforms -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["input:resize_range=0.6+0.95", "input:jpeg_range=20+95"])
def test_a_draw_is_a_function_of_the_image_and_the_draw_index_only(spec):
    x, _ = _cifar(6, side=64)
    defense = create_defense(spec)
    with torch.no_grad():
        alone = defense(x[2:3])
        in_batch = defense(x)  # the same image among others, at another position
        reordered = defense(x.flip(0))
        assert torch.equal(in_batch[2:3], alone) and torch.equal(reordered.flip(0), in_batch)
        with eot_draw(1):
            other = defense(x)
        with eot_draw(1):
            assert torch.equal(defense(x), other)
    changed = (other - in_batch).flatten(1).abs().amax(1) > 0
    assert bool(changed.all()), changed  # every image draws anew at another index


def test_input_gradient_runs_draw_k_at_index_k_and_scoring_at_draw_0():
    seen = []

    def model(pixels):
        seen.append(current_draw())
        return pixels.flatten(1)[:, :3] * 2

    grad, _, _ = input_gradient(model, torch.rand(2, 3, 4, 4), lambda logits: logits.sum(1), eot_draws=3)
    assert seen == [0, 1, 2] and current_draw() == 0 and torch.isfinite(grad).all()
    with pytest.raises(ValueError, match="integer >= 0"):
        with eot_draw(-1):
            pass


def test_eot_over_draws_gives_a_less_noisy_gradient_of_a_randomised_defense(toyclip):
    # The expected gradient is estimated from 16 draws that EOT does not use (16..31); EOT's 8-draw estimate
    # must point much closer to it than a single draw does (measured: cosine 0.64 against 0.40).
    classifier = _zeroshot(toyclip, ["input:resize_range=0.7+1.0"]).classifier
    x, labels = _cifar(4, side=64)

    def objective(logits):
        return F.cross_entropy(logits, labels, reduction="none")

    reference = torch.zeros_like(x)
    for k in range(16, 32):
        with eot_draw(k):  # by hand: input_gradient numbers its own draws from 0
            pixels = x.clone().requires_grad_(True)
            reference += torch.autograd.grad(objective(classifier(pixels)).sum(), pixels)[0]
    one = input_gradient(classifier, x, objective, eot_draws=1)[0]
    many = input_gradient(classifier, x, objective, eot_draws=8)[0]
    cosine = lambda g: float(F.cosine_similarity(g.flatten(1), reference.flatten(1)).mean())
    assert cosine(many) > cosine(one) + 0.2, (cosine(one), cosine(many))


def test_a_randomised_defense_is_deterministic_at_a_fixed_draw_so_sanity_flags_stay_quiet(toyclip):
    x, labels = _cifar(4, side=64)
    for spec in ("input:jpeg=75", "input:jpeg_range=60+90"):
        flags = sanity_flags(_zeroshot(toyclip, [spec]).classifier, x, labels)
        assert flags["flags"] == [] and flags["zero_gradients"]["zero_share"] < 0.1
