"""The ``input`` defense: blur, downscale or JPEG re-encoding of [0,1] pixels before normalisation.

Blur and downscale are differentiable and attacked through exactly. JPEG is not (quantisation has zero
gradient almost everywhere, and the codec runs outside autograd), so its backward pass is the identity:
BPDA (Athalye et al. 2018), the straight-through estimate an adaptive attacker uses. Results say so
(``bpda: true``).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from typobench.defenses.base import BuildContext, Defense
from typobench.defenses.classifier import PixelStep
from typobench.defenses.spec import SpecFields

TRANSFORMS = ("blur", "downscale", "jpeg")


def gaussian_blur(pixels: Tensor, sigma: float) -> Tensor:
    """[N,3,H,W] blurred by a Gaussian of ``sigma`` pixels (kernel 2*ceil(3 sigma)+1, reflected borders)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=pixels.device, dtype=pixels.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = pixels.shape[1]
    # Separable: rows, then columns; one kernel per channel (depthwise).
    padded = F.pad(pixels, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def downscale(pixels: Tensor, factor: float) -> Tensor:
    """[N,3,H,W] shrunk by ``factor`` (antialiased bilinear) and brought back to H x W (bilinear)."""
    height, width = pixels.shape[-2:]
    small = (max(1, round(height / factor)), max(1, round(width / factor)))
    shrunk = F.interpolate(pixels, size=small, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(shrunk, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


@torch.no_grad()
def jpeg_reencode(pixels: Tensor, quality: int) -> Tensor:
    """[N,3,H,W] through an 8-bit JPEG encoder (PIL) at ``quality`` and back: no gradient."""
    out = []
    for image in pixels.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        out.append(torch.from_numpy(decoded.copy()))
    return torch.stack(out).permute(0, 3, 1, 2).to(pixels.device, pixels.dtype) / 255.0


def straight_through(pixels: Tensor, transformed: Tensor) -> Tensor:
    """``transformed`` on the forward pass, the identity on the backward pass (BPDA)."""
    return pixels + (transformed - pixels).detach()


class InputDefense(Defense):
    """One pixel transform: ``input:blur=SIGMA``, ``input:downscale=FACTOR`` or ``input:jpeg=QUALITY``."""

    kind = "input"
    fields = TRANSFORMS

    def __init__(self, spec: str, transform: str, value: float):
        super().__init__(spec)
        self.transform, self.value = transform, value

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> InputDefense:
        transform = fields.exactly_one(TRANSFORMS)
        limits = {"blur": dict(minimum=0.01, maximum=50.0), "downscale": dict(minimum=1.0, maximum=64.0),
                  "jpeg": dict(minimum=1, maximum=100, integer=True)}
        value = fields.number(transform, **limits[transform])
        fields.finish(cls.fields)
        return cls(spec, transform, value)

    def parameters(self) -> dict[str, Any]:
        name = {"blur": "sigma", "downscale": "factor", "jpeg": "quality"}[self.transform]
        return {"transform": self.transform, name: self.value, "differentiable": self.transform != "jpeg",
                "bpda": self.transform == "jpeg"}

    def __call__(self, pixels: Tensor) -> Tensor:
        if self.transform == "blur":
            return gaussian_blur(pixels, self.value)
        if self.transform == "downscale":
            return downscale(pixels, self.value)
        return straight_through(pixels, jpeg_reencode(pixels, int(self.value)))

    def wrap(self, classifier: Any, ctx: BuildContext, record: dict[str, Any]) -> Any:
        return classifier.then(PixelStep(self))


__all__ = ["InputDefense", "TRANSFORMS", "downscale", "gaussian_blur", "jpeg_reencode", "straight_through"]
