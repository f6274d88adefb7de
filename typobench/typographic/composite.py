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

from typobench.errors import UsageError
from typobench.typographic.placement import PlacementRecord, Position, Size

# A pixel counts as changed when it would change after rounding to 8 bits.
DEFAULT_CHANGE_TOL = 0.5 / 255


def _check_patch(patch: torch.Tensor) -> None:
    if not isinstance(patch, torch.Tensor) or patch.dim() != 3 or patch.shape[0] != 4:
        shape = tuple(patch.shape) if isinstance(patch, torch.Tensor) else type(patch).__name__
        raise UsageError(f"a patch must be an RGBA tensor [4, h, w], got {shape}")


# One placed copy after clipping: image index, patch slot, then the visible box in canvas
# coordinates (x0, y0, x1, y1) and its origin inside the patch (px, py).
_Paste = tuple[int, int, int, int, int, int, int, int]


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

    Copies are split into layers in which no two copies of one image overlap. A layer is pasted
    by one custom autograd op (slice copies forward, slice sums backward: no per-copy autograd
    node, whose backward would copy the whole canvas once per copy); layers are then combined
    with one vectorised "over". Usually there is a single layer.
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
    layers: list[list[_Paste]] = [[]]
    for image_index, items in enumerate(placements):
        drawn: list[tuple[int, int, int, int, int]] = []  # visible boxes of this image + their layer
        for patch, (x, y) in items:
            slot = slots.get(id(patch))
            if slot is None:
                _check_patch(patch)
                slot = slots[id(patch)] = len(patches)
                patches.append(patch)
            h, w = int(patch.shape[1]), int(patch.shape[2])
            x, y = int(x), int(y)
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
            if x0 >= x1 or y0 >= y1:
                continue  # wholly outside the image
            # Above every earlier copy it overlaps, so drawing order is kept.
            layer = 1 + max((l for bx0, by0, bx1, by1, l in drawn if x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1), default=-1)
            drawn.append((x0, y0, x1, y1, layer))
            if layer == len(layers):
                layers.append([])
            layers[layer].append((image_index, slot, x0, y0, x1, y1, x0 - x, y0 - y))

    converted = [p.to(device=device, dtype=dtype) for p in patches]
    shape = (len(placements), 4, height, width)
    canvas = _PasteLayer.apply(shape, layers[0], *converted) if converted else torch.zeros(shape, device=device, dtype=dtype)
    for pastes in layers[1:]:
        canvas = _over(_PasteLayer.apply(shape, pastes, *converted), canvas)
    return canvas


class _PasteLayer(torch.autograd.Function):
    """Paste non-overlapping patch copies onto a zero canvas; linear in the patches."""

    @staticmethod
    def forward(ctx, shape: tuple[int, int, int, int], pastes: list[_Paste], *patches: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        canvas = torch.zeros(shape, device=patches[0].device, dtype=patches[0].dtype)
        for image, slot, x0, y0, x1, y1, px, py in pastes:
            canvas[image, :, y0:y1, x0:x1] = patches[slot][:, py : py + y1 - y0, px : px + x1 - x0]
        ctx.pastes = pastes
        ctx.patch_shapes = [p.shape for p in patches]
        return canvas

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        needs = ctx.needs_input_grad[2:]
        grads = [grad.new_zeros(shape) if need else None for shape, need in zip(ctx.patch_shapes, needs)]
        for image, slot, x0, y0, x1, y1, px, py in ctx.pastes:
            target = grads[slot]
            if target is not None:
                target[:, py : py + y1 - y0, px : px + x1 - x0] += grad[image, :, y0:y1, x0:x1]
        return (None, None, *grads)


def _over(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """Straight-alpha "over" of canvases ``[N, 4, H, W]``: ``top`` drawn onto ``bottom``.

    Exact where either side is transparent (the other side comes through untouched).
    """
    top_a, bottom_a = top[:, 3:4], bottom[:, 3:4]
    out_a = top_a + bottom_a * (1 - top_a)
    premult = top[:, :3] * top_a + bottom[:, :3] * bottom_a * (1 - top_a)
    # where() on the denominator (not on the quotient) keeps the backward pass free of 0/0 NaNs.
    safe_a = torch.where(out_a > 0, out_a, torch.ones_like(out_a))
    blended = premult / safe_a
    out_rgb = torch.where(top_a == 0, bottom[:, :3], torch.where(bottom_a == 0, top[:, :3], blended))
    return torch.cat([out_rgb, out_a], dim=1)


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
