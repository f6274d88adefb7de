"""Compositing: alpha-blend values, clipping, gradients, no mutation, dtype/device, pixel fractions."""

from __future__ import annotations

import pytest
import torch

from typobench.core.errors import UsageError
from typobench.typographic import (
    TextStyle,
    alpha_coverage,
    apply_patches,
    build_canvas,
    canvas_mask,
    composite,
    create_placement,
    pixel_fraction,
    render_patch,
)


def solid_patch(h: int, w: int, rgb=(1.0, 0.0, 0.0), alpha: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    patch = torch.empty(4, h, w, dtype=dtype)
    patch[:3] = torch.tensor(rgb, dtype=dtype)[:, None, None]
    patch[3] = alpha
    return patch


def grey(n: int = 2, size: int = 16, value: float = 0.5, dtype=torch.float32) -> torch.Tensor:
    return torch.full((n, 3, size, size), value, dtype=dtype)


def test_opaque_box_changes_exactly_its_area():
    images = grey(3, 32)
    patch = solid_patch(5, 7)
    canvas = build_canvas([[(patch, (2, 3))], [(patch, (20, 20))], []], (32, 32))
    attacked = composite(images, canvas)
    expected = 5 * 7 / (32 * 32)
    assert torch.allclose(pixel_fraction(images, attacked), torch.tensor([expected, expected, 0.0]))
    assert torch.allclose(alpha_coverage(canvas), torch.tensor([expected, expected, 0.0]))
    assert torch.equal(attacked[0, :, 3:8, 2:9], patch[:3])


def test_rendered_sticker_pixel_fraction_matches_its_box():
    patch = render_patch(TextStyle("cat", size=10, fill="red", box="red"), 64)
    images = torch.rand(1, 3, 64, 64) * 0.4  # never red at full saturation
    record = create_placement("fixed", x=3, y=4).place(patch.shape[-2:], (64, 64), "a")
    attacked, canvas = apply_patches(images, [patch], [record])
    h, w = patch.shape[-2:]
    assert pixel_fraction(images, attacked).item() == pytest.approx(h * w / 64**2)
    assert canvas_mask(canvas)[0, 0].sum().item() == h * w


def test_alpha_blend_values():
    images = torch.rand(1, 3, 8, 8)
    colour = (0.2, 0.9, 0.4)
    for alpha, expected in [
        (1.0, torch.tensor(colour)[:, None, None].expand(3, 8, 8)),
        (0.0, images[0]),
        (0.5, (images[0] + torch.tensor(colour)[:, None, None]) / 2),
    ]:
        canvas = build_canvas([[(solid_patch(8, 8, colour, alpha), (0, 0))]], (8, 8))
        out = composite(images, canvas)[0]
        if alpha in (0.0, 1.0):
            assert torch.equal(out, expected), alpha  # exact at both ends
        else:
            assert torch.allclose(out, expected, atol=1e-6)


def test_canvas_batch_of_one_broadcasts():
    images = torch.rand(4, 3, 8, 8)
    canvas = build_canvas([[(solid_patch(2, 2), (0, 0))]], (8, 8))
    out = composite(images, canvas)
    assert torch.equal(out[:, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]).expand(4, 3))
    assert torch.equal(out[:, :, 5:, 5:], images[:, :, 5:, 5:])


def test_patches_partly_outside_are_clipped_and_wholly_outside_ignored():
    patch = torch.rand(4, 4, 6)
    canvas = build_canvas([[(patch, (-2, -1))], [(patch, (5, 6))], [(patch, (10, -20))]], (8, 8))
    assert torch.equal(canvas[0, :, 0:3, 0:4], patch[:, 1:4, 2:6])
    assert canvas[0, :, 3:, :].abs().sum() == 0 and canvas[0, :, :, 4:].abs().sum() == 0
    assert torch.equal(canvas[1, :, 6:8, 5:8], patch[:, 0:2, 0:3])
    assert canvas[2].abs().sum() == 0


def test_overlapping_copies_composite_over_each_other():
    red = solid_patch(4, 4, (1.0, 0.0, 0.0), alpha=0.5)
    blue = solid_patch(4, 4, (0.0, 0.0, 1.0), alpha=0.5)
    canvas = build_canvas([[(red, (0, 0)), (blue, (2, 0))]], (4, 8))
    assert torch.allclose(canvas[0, 3], torch.tensor([0.5, 0.5, 0.75, 0.75, 0.5, 0.5, 0.0, 0.0]).expand(4, 8))
    # overlap: blue (top) weighted 0.5, red 0.25, normalised by alpha 0.75
    assert torch.allclose(canvas[0, :3, 0, 2], torch.tensor([1 / 3, 0.0, 2 / 3]))
    # compositing the canvas equals compositing the patches one after the other
    images = torch.rand(1, 3, 4, 8)
    one_by_one = composite(composite(images, build_canvas([[(red, (0, 0))]], (4, 8))), build_canvas([[(blue, (2, 0))]], (4, 8)))
    assert torch.allclose(composite(images, canvas), one_by_one, atol=1e-6)


def test_gradients_reach_images_patches_and_canvas():
    images = torch.rand(2, 3, 16, 16, requires_grad=True)
    patch = torch.rand(4, 5, 6, requires_grad=True)
    canvas = build_canvas([[(patch, (1, 1)), (patch, (4, 3))], [(patch, (-2, 12))]], (16, 16))
    composite(images, canvas).sum().backward()
    assert images.grad is not None and patch.grad is not None
    assert patch.grad[:3].abs().sum() > 0 and patch.grad[3].abs().sum() > 0
    # image pixels under an opaque-ish patch get gradient (1 - alpha), elsewhere 1
    assert torch.all(images.grad[:, :, 0, 15] == 1)
    assert torch.allclose(images.grad[1, :, 15, 0], (1 - patch[3, 3, 2]).detach().expand(3))
    # a leaf canvas (what PGD inside the sticker optimises) gets colour and alpha gradients
    leaf = canvas.detach().requires_grad_(True)
    (composite(images.detach(), leaf) * torch.rand(2, 3, 16, 16)).sum().backward()
    mask = canvas_mask(leaf)
    assert leaf.grad[:, :3][mask.expand(-1, 3, -1, -1)].abs().sum() > 0
    assert leaf.grad[:, 3:][mask].abs().sum() > 0


def test_gradcheck_through_overlapping_copies():
    images = torch.rand(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    patch = (torch.rand(4, 3, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)

    def fn(images, patch):
        canvas = build_canvas([[(patch, (0, 0)), (patch, (2, 1))]], (6, 6), dtype=torch.float64)
        return composite(images, canvas)

    assert torch.autograd.gradcheck(fn, (images, patch))


def test_composite_does_not_mutate_inputs_or_cached_patches():
    style = TextStyle("cat", size=10, box="white")
    patch = render_patch(style, 32)
    patch_before = patch.clone()
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    images_before = images.detach().clone()
    records = [create_placement("copies", n=3).place(patch.shape[-2:], (32, 32), i) for i in range(2)]
    attacked, canvas = apply_patches(images, [patch, patch], records)
    canvas_before = canvas.detach().clone()
    attacked.sum().backward()
    assert torch.equal(images.detach(), images_before)
    assert torch.equal(patch, patch_before)
    assert torch.equal(canvas.detach(), canvas_before)
    assert render_patch(style, 32) is patch and torch.equal(render_patch(style, 32), patch_before)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_output_follows_image_dtype(dtype):
    images = grey(2, 16, dtype=dtype)
    canvas = build_canvas([[(solid_patch(4, 4), (0, 0))], []], (16, 16))  # float32 canvas
    out = composite(images, canvas)
    assert out.dtype == dtype and out.device == images.device
    assert out[0, 0, 0, 0].item() == 1.0 and out[1, 0, 0, 0].item() == 0.5


def test_apply_patches_builds_canvas_in_image_dtype():
    images = grey(1, 16, dtype=torch.float64)
    patch = solid_patch(3, 3)
    record = create_placement("fixed", x=0, y=0).place((3, 3), (16, 16), "a")
    attacked, canvas = apply_patches(images, [patch], [record])
    assert canvas.dtype == torch.float64 and attacked.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_output_follows_image_device():
    images = grey(2, 16).cuda()
    canvas = build_canvas([[(solid_patch(4, 4), (0, 0))], []], (16, 16), device="cuda")
    assert composite(images, canvas).device == images.device
    assert composite(images, canvas.cpu()).device == images.device


def test_canvas_mask_is_bool_alpha_support():
    patch = solid_patch(3, 3, alpha=0.25)
    patch[3, 1, 1] = 0.0
    canvas = build_canvas([[(patch, (1, 1))]], (6, 6))
    mask = canvas_mask(canvas)
    assert mask.dtype == torch.bool and mask.shape == (1, 1, 6, 6)
    assert mask.sum() == 8 and not mask[0, 0, 2, 2]
    assert canvas_mask(canvas, threshold=0.5).sum() == 0


def test_pixel_fraction_tolerance():
    clean = grey(1, 10)
    attacked = clean.clone()
    attacked[0, 0, 0, :5] += 1 / 255  # one 8-bit step: counts
    attacked[0, 1, 5, :] += 0.1 / 255  # float noise: does not count
    assert pixel_fraction(clean, attacked).item() == pytest.approx(5 / 100)
    assert pixel_fraction(clean, attacked, tol=0).item() == pytest.approx(15 / 100)


def test_shape_errors_raise_usage_error():
    with pytest.raises(UsageError, match="patch"):
        build_canvas([[(torch.rand(3, 4, 4), (0, 0))]], (8, 8))
    with pytest.raises(UsageError, match="canvas"):
        composite(torch.rand(2, 3, 8, 8), torch.rand(2, 4, 9, 8))
    with pytest.raises(UsageError, match="records"):
        apply_patches(torch.rand(2, 3, 8, 8), [solid_patch(2, 2)], [create_placement("fixed").place((2, 2), (8, 8), "a")])


def _naive_canvas(placements, size):
    """Reference: full-canvas "over" per copy with plain autograd ops, premultiplied output."""
    height, width = size
    premult = torch.zeros(len(placements), 3, height, width, dtype=torch.float64)
    alpha = torch.zeros(len(placements), 1, height, width, dtype=torch.float64)
    out_p, out_a = [], []
    for index, items in enumerate(placements):
        p, a = premult[index], alpha[index]
        for patch, (x, y) in items:
            h, w = patch.shape[-2:]
            layer = torch.nn.functional.pad(patch, (x, width - x - w, y, height - y - h))  # negative pads crop
            top_a = layer[3:4]
            p = layer[:3] * top_a + p * (1 - top_a)
            a = top_a + a * (1 - top_a)
        out_p.append(p)
        out_a.append(a)
    return torch.stack(out_p), torch.stack(out_a)


def test_build_canvas_matches_naive_reference_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    soft = [(torch.rand(4, h, w, generator=gen, dtype=torch.float64)).requires_grad_(True) for h, w in [(4, 7), (6, 3), (5, 5)]]
    soft[0].data[3, :, :2] = 0  # transparent margin
    opaque = torch.rand(4, 5, 6, generator=gen, dtype=torch.float64)
    opaque[3] = 1  # takes the occlusion shortcut
    pool = soft + [opaque]
    size = (12, 13)
    placements = []
    for _ in range(5):
        n = int(torch.randint(0, 6, (1,), generator=gen))
        items = []
        for _ in range(n):
            patch = pool[int(torch.randint(len(pool), (1,), generator=gen))]
            x, y = (int(v) for v in torch.randint(-4, 12, (2,), generator=gen))
            items.append((patch, (x, y)))
        placements.append(items)
    assert sum(len(items) for items in placements) > 8

    canvas = build_canvas(placements, size, dtype=torch.float64)
    ref_p, ref_a = _naive_canvas(placements, size)
    got_p, got_a = canvas[:, :3] * canvas[:, 3:], canvas[:, 3:]
    assert torch.allclose(got_p, ref_p) and torch.allclose(got_a, ref_a)

    weights_p, weights_a = torch.rand_like(ref_p), torch.rand_like(ref_a)
    got = torch.autograd.grad((got_p * weights_p).sum() + (got_a * weights_a).sum(), soft)
    ref = torch.autograd.grad((ref_p * weights_p).sum() + (ref_a * weights_a).sum(), soft)
    for g, r in zip(got, ref):
        assert torch.allclose(g, r, atol=1e-10)
