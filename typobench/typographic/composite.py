"""Differentiable alpha compositing of text patches onto image batches.

Two steps: ``build_canvas`` places RGBA patches (``[4, h, w]``, straight alpha) at integer
positions on a full-size transparent canvas ``[N, 4, H, W]``; ``composite`` alpha-blends that
canvas over images ``[N, 3, H, W]`` in one op. Both are differentiable with respect to the
images, the patches and the canvas, so an attack can optimise the sticker's colour/alpha (use
``canvas_mask`` to restrict it to the sticker). Nothing here modifies its inputs: rendered patches
are shared cache entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from typobench.core.errors import UsageError
from typobench.typographic.geometry import Position, Size
from typobench.typographic.placement import PlacementRecord

# A pixel counts as changed when it would change after rounding to 8 bits.
DEFAULT_CHANGE_TOL = 0.5 / 255


def _check_patch(patch: torch.Tensor) -> None:
    if not isinstance(patch, torch.Tensor) or patch.dim() != 3 or patch.shape[0] != 4:
        shape = tuple(patch.shape) if isinstance(patch, torch.Tensor) else type(patch).__name__
        raise UsageError(f"a patch must be an RGBA tensor [4, h, w], got {shape}")


# How a step draws its copy. PASTE: nothing drawn there yet, copy the patch. OCCLUDE: an
# earlier copy lies below but this patch is fully opaque (and needs no gradient), so "over" is
# a plain copy. BLEND: "over" compositing onto what lies below.
_PASTE, _OCCLUDE, _BLEND = 0, 1, 2

# One drawing step: image index, patch slot, the visible box in canvas coordinates (x0, y0, x1,
# y1), its origin inside the patch (px, py), and the mode above.
_Step = tuple[int, int, int, int, int, int, int, int, int]


def build_canvas(
    placements: Sequence[Sequence[tuple[torch.Tensor, Position]]],
    image_size: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A transparent canvas ``[N, 4, H, W]`` with patches placed on it.

    ``placements[i]`` lists ``(patch, (x, y))`` pairs for image ``i`` (any number of copies; later
    ones are drawn over earlier ones with "over" compositing). A patch is ``[4, h, w]`` straight
    RGBA; ``(x, y)`` is its top-left corner and may lie partly or wholly outside the image (the
    outside part is clipped). The canvas is straight RGBA; pixels no patch touches are all zero.
    Gradients flow back to the patches.

    Cost is one slice copy per copy (an "over" blend on the copy's box where it overlaps an
    earlier one), never a full-canvas op per copy, forward or backward.
    """
    height, width = (int(v) for v in image_size)
    if device is None:
        first = next((p for items in placements for p, _ in items), None)
        device = first.device if isinstance(first, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)

    # Distinct patch objects are converted once: cached renders are shared across the batch,
    # and a host-to-device copy per copy would dominate on GPU.
    slots: dict[int, int] = {}
    patches: list[torch.Tensor] = []
    opaque: list[bool] = []
    steps: list[_Step] = []
    for image_index, items in enumerate(placements):
        drawn: list[tuple[int, int, int, int]] = []  # visible boxes already on this image
        for patch, (x, y) in items:
            slot = slots.get(id(patch))
            if slot is None:
                _check_patch(patch)
                slot = slots[id(patch)] = len(patches)
                patches.append(patch)
                opaque.append(not patch.requires_grad and bool(patch[3].min() >= 1))
            x, y = int(x), int(y)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + int(patch.shape[2]), width), min(y + int(patch.shape[1]), height)
            if x0 >= x1 or y0 >= y1:
                continue  # wholly outside the image
            if not any(x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1 for bx0, by0, bx1, by1 in drawn):
                mode = _PASTE
            else:
                mode = _OCCLUDE if opaque[slot] else _BLEND
            drawn.append((x0, y0, x1, y1))
            steps.append((image_index, slot, x0, y0, x1, y1, x0 - x, y0 - y, mode))

    shape = (len(placements), 4, height, width)
    if not steps:
        return torch.zeros(shape, device=device, dtype=dtype)
    converted = [p.to(device=device, dtype=dtype) for p in patches]
    return _DrawCopies.apply(shape, steps, *converted)


class _DrawCopies(torch.autograd.Function):
    """Draw patch copies onto a zero canvas in order, with a hand-rolled region-local backward.

    Plain autograd would record one in-place slice write per copy, and each such node's backward
    clones the whole canvas gradient: O(copies x canvas). Here backward walks the steps in
    reverse, touching only each copy's box.
    """

    @staticmethod
    def forward(ctx, shape: tuple[int, int, int, int], steps: list[_Step], *patches: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        canvas = torch.zeros(shape, device=patches[0].device, dtype=patches[0].dtype)
        below: list[torch.Tensor] = []  # canvas content under each blended copy, for backward
        for image, slot, x0, y0, x1, y1, px, py, mode in steps:
            patch = patches[slot]
            if px or py or y1 - y0 != patch.shape[1] or x1 - x0 != patch.shape[2]:
                patch = patch[:, py : py + y1 - y0, px : px + x1 - x0]  # clipped at the border
            if mode == _BLEND:
                bottom = canvas[image, :, y0:y1, x0:x1].clone()
                below.append(bottom)
                patch = _over(patch, bottom)
            # One indexed assignment, not view-then-copy_: this loop runs once per copy.
            canvas[image, :, y0:y1, x0:x1] = patch
        ctx.steps, ctx.below = steps, below
        ctx.save_for_backward(*patches)
        return canvas

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        patches = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        grads = [torch.zeros_like(p) if need else None for p, need in zip(patches, needs)]
        grad = grad.clone()  # rewritten in place as gradient flows to what lay below each copy
        below = list(ctx.below)
        for image, slot, x0, y0, x1, y1, px, py, mode in reversed(ctx.steps):
            g_out = grad[image, :, y0:y1, x0:x1]
            patch_box = (slice(None), slice(py, py + y1 - y0), slice(px, px + x1 - x0))
            if mode == _BLEND:
                bottom = below.pop().requires_grad_(True)
                with torch.enable_grad():
                    piece = patches[slot][patch_box].detach().requires_grad_(True)
                    g_piece, g_bottom = torch.autograd.grad(_over(piece, bottom), (piece, bottom), g_out)
                g_out.copy_(g_bottom)
            elif mode == _OCCLUDE:
                g_piece = g_out.clone()
                g_out.zero_()  # what lies below is hidden: no gradient reaches it
            else:
                g_piece = g_out  # nothing earlier lies below
            if grads[slot] is not None:
                grads[slot][patch_box] += g_piece
        return (None, None, *grads)


def _over(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """Straight-alpha "over": ``top`` drawn onto ``bottom``, both ``[4, h, w]`` RGBA."""
    top_a, bottom_a = top[3:4], bottom[3:4]
    w_bottom = bottom_a * (1 - top_a)  # how much of the bottom shows through
    out_a = top_a + w_bottom
    premult = torch.addcmul(bottom[:3] * w_bottom, top[:3], top_a)
    # Where both are transparent the colour is 0/0; take the top's colour, the limit as its alpha
    # rises from 0 (what a paste onto an empty canvas gives), so d(rgb * alpha)/d(alpha) is right.
    # where() on the denominator too, not only the quotient: no 0/0 NaN in the backward pass.
    # (No where(top_a == 0, bottom, ...) shortcut for bit-exactness: it would zero the gradient
    # with respect to the top's alpha exactly where an attack starts from a transparent pixel.)
    visible = out_a > 0
    rgb = torch.where(visible, premult / torch.where(visible, out_a, 1.0), top[:3])
    return torch.cat([rgb, out_a], dim=0)


def canvas_from_records(
    patches: Sequence[torch.Tensor],
    records: Sequence[PlacementRecord],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``build_canvas`` for one patch per image placed at every position of its record: ``[N, 4, H, W]``."""
    if len(patches) != len(records):
        raise UsageError(f"got {len(patches)} patches for {len(records)} placement records: pass one patch per record")
    if not records:
        raise UsageError("no placement records: pass at least one image's record")
    sizes = {record.image_size for record in records}
    if len(sizes) != 1:
        raise UsageError(f"placement records disagree on the image size ({sorted(sizes)}): place every image of a batch at one size")
    for patch, record in zip(patches, records):
        if tuple(patch.shape[-2:]) != tuple(record.patch_size):
            raise UsageError(f"patch of size {tuple(patch.shape[-2:])} does not match its record's patch_size {record.patch_size}: place the patch you render")
    placements = [[(patch, position) for position in record.positions] for patch, record in zip(patches, records)]
    return build_canvas(placements, sizes.pop(), device=device, dtype=dtype)


def composite(images: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    """Alpha-blend a canvas over images: ``images * (1 - a) + rgb * a``.

    ``images`` ``[N, 3, H, W]`` in [0, 1]; ``canvas`` ``[N or 1, 4, H, W]`` straight RGBA. The
    result has the images' device and dtype (the canvas is converted). ``torch.lerp`` is exact at
    both ends: alpha 0 returns the image pixel unchanged, alpha 1 the canvas colour. Differentiable
    in both arguments; neither is modified.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise UsageError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
    if canvas.dim() != 4 or canvas.shape[1] != 4 or canvas.shape[-2:] != images.shape[-2:] or canvas.shape[0] not in (1, images.shape[0]):
        raise UsageError(f"canvas {tuple(canvas.shape)} must be [N or 1, 4, H, W] matching images {tuple(images.shape)}: build it at the images' size")
    canvas = canvas.to(device=images.device, dtype=images.dtype)
    rgb, alpha = canvas[:, :3], canvas[:, 3:4]
    return torch.lerp(images, rgb.expand_as(images), alpha.expand_as(images))


def apply_patches(
    images: torch.Tensor, patches: Sequence[torch.Tensor], records: Sequence[PlacementRecord]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place one patch per image at its record's positions and composite: ``(attacked, canvas)``."""
    if len(records) != images.shape[0]:
        raise UsageError(f"got {len(records)} placement records for {images.shape[0]} images: pass one per image")
    size: Size = (int(images.shape[-2]), int(images.shape[-1]))
    if records and tuple(records[0].image_size) != size:
        raise UsageError(f"placements were computed for {records[0].image_size} but images are {size}: place at the images' size")
    canvas = canvas_from_records(patches, records, device=images.device, dtype=images.dtype)
    return composite(images, canvas), canvas


def canvas_mask(canvas: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Bool ``[N, 1, H, W]``: pixels where the canvas alpha exceeds ``threshold`` (the sticker/text area)."""
    if canvas.dim() != 4 or canvas.shape[1] != 4:
        raise UsageError(f"canvas must be [N, 4, H, W], got {tuple(canvas.shape)}")
    return canvas[:, 3:4] > threshold


def alpha_coverage(canvas: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Float ``[N]``: fraction of each image's pixels the canvas covers (alpha > ``threshold``)."""
    return canvas_mask(canvas, threshold).flatten(1).float().mean(dim=1)


def pixel_fraction(clean: torch.Tensor, attacked: torch.Tensor, tol: float = DEFAULT_CHANGE_TOL) -> torch.Tensor:
    """Float ``[N]``: fraction of pixels where any channel differs by more than ``tol``.

    ``clean`` and ``attacked`` are ``[N, C, H, W]`` of the same shape. The default ``tol`` (half an
    8-bit step) counts a pixel as changed when it would change once saved as an 8-bit image.
    """
    if clean.shape != attacked.shape or clean.dim() != 4:
        raise UsageError(f"clean {tuple(clean.shape)} and attacked {tuple(attacked.shape)} must both be [N, C, H, W]")
    with torch.no_grad():
        changed = (attacked.to(clean) - clean).abs().amax(dim=1) > tol  # [N, H, W]
        return changed.flatten(1).float().mean(dim=1)
