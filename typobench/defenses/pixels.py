"""The ``input`` defense: a pixel transform of [0,1] pixels before normalisation, each with its backward pass.

* ``blur=SIGMA``, ``downscale=FACTOR``: differentiable, attacked exactly (``backward: exact``);
* ``jpeg=QUALITY``: the real codec (PIL) on the forward pass. It has no useful gradient (quantisation is
  flat almost everywhere, and the codec runs outside autograd), so the backward pass is a surrogate: BPDA
  (Athalye et al. 2018). The default surrogate is a differentiable JPEG (``backward: jpeg-approx``,
  :mod:`typobench.defenses.jpeg_approx`); ``backward=identity`` asks for the straight-through estimate,
  which is weaker: it leaves much of JPEG's apparent robustness standing;
* ``jpeg_range=LO+HI``: JPEG at a random quality per image, ``resize_range=LO+HI``: random
  resize-and-pad (Xie et al. 2018). Both are randomised (``randomised: true``): attack them with EOT.
  Their draws are a pure function of the image and the EOT draw index (:mod:`.random_pixels`).

Results record ``backward`` and ``bpda`` (true wherever the backward pass is not the exact one).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from typobench.defenses.base import BuildContext, Defense
from typobench.defenses.classifier import PixelStep
from typobench.defenses.jpeg_approx import jpeg_approx
from typobench.defenses.random_pixels import random_qualities, resize_and_pad
from typobench.defenses.spec import SpecFields

EXACT = "exact"  # the backward pass of a differentiable transform: its own gradient
JPEG_BACKWARDS = ("jpeg-approx", "identity")  # the first is the default


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
def jpeg_reencode(pixels: Tensor, quality: int | Sequence[int]) -> Tensor:
    """[N,3,H,W] through an 8-bit JPEG encoder (PIL) at ``quality`` (one, or one per image) and back:
    no gradient."""
    images = pixels.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    qualities = [int(quality)] * len(images) if isinstance(quality, int) else [int(q) for q in quality]
    out = []
    for image, q in zip(images, qualities, strict=True):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=q)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        out.append(torch.from_numpy(decoded.copy()))
    return torch.stack(out).permute(0, 3, 1, 2).to(pixels.device, pixels.dtype) / 255.0


def straight_through(pixels: Tensor, transformed: Tensor) -> Tensor:
    """``transformed`` on the forward pass, the identity on the backward pass (BPDA)."""
    return pixels + (transformed - pixels).detach()


def with_surrogate_gradient(real: Tensor, surrogate: Tensor) -> Tensor:
    """Exactly ``real``'s values (``x - x`` is exactly 0), with ``surrogate``'s gradient (BPDA)."""
    return real + (surrogate - surrogate.detach())


class PixelTransform:
    """One transform of the ``input`` defense: the spec field ``key`` holds its value, ``parameter`` is the
    value's name in results; ``backwards`` are the backward passes it offers (the first is the default)."""

    key: ClassVar[str]
    parameter: ClassVar[str]
    backwards: ClassVar[tuple[str, ...]] = (EXACT,)
    randomised: ClassVar[bool] = False

    def __init__(self, value: Any, backward: str):
        self.value, self.backward = value, backward

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        raise NotImplementedError

    def __call__(self, pixels: Tensor) -> Tensor:
        """[N,3,H,W] in [0,1] -> [N,3,H,W] in [0,1]."""
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"transform": self.key, self.parameter: value, "differentiable": self.backward == EXACT,
                "backward": self.backward, "bpda": self.backward != EXACT, "randomised": self.randomised}


class Blur(PixelTransform):
    key, parameter = "blur", "sigma"

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        return fields.number(cls.key, minimum=0.01, maximum=50.0)

    def __call__(self, pixels: Tensor) -> Tensor:
        return gaussian_blur(pixels, self.value)


class Downscale(PixelTransform):
    key, parameter = "downscale", "factor"

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        return fields.number(cls.key, minimum=1.0, maximum=64.0)

    def __call__(self, pixels: Tensor) -> Tensor:
        return downscale(pixels, self.value)


class Jpeg(PixelTransform):
    key, parameter = "jpeg", "quality"
    backwards = JPEG_BACKWARDS

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        return fields.number(cls.key, minimum=1, maximum=100, integer=True)

    def qualities(self, pixels: Tensor) -> int | list[int]:
        return self.value

    def __call__(self, pixels: Tensor) -> Tensor:
        quality = self.qualities(pixels)
        real = jpeg_reencode(pixels, quality)
        if self.backward == "identity":
            return with_surrogate_gradient(real, pixels)
        if not (torch.is_grad_enabled() and pixels.requires_grad):
            return real  # nothing to differentiate: skip the surrogate
        return with_surrogate_gradient(real, jpeg_approx(pixels, quality))


class JpegRange(Jpeg):
    key, parameter = "jpeg_range", "quality_range"
    randomised = True

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        return fields.number_range(cls.key, minimum=1, maximum=100, integer=True)

    def qualities(self, pixels: Tensor) -> int | list[int]:
        return random_qualities(pixels, *self.value)


class ResizeRange(PixelTransform):
    key, parameter = "resize_range", "scale_range"
    randomised = True

    @classmethod
    def read(cls, fields: SpecFields) -> Any:
        return fields.number_range(cls.key, minimum=0.1, maximum=1.0)

    def __call__(self, pixels: Tensor) -> Tensor:
        return resize_and_pad(pixels, *self.value)


TRANSFORM_CLASSES: dict[str, type[PixelTransform]] = {
    cls.key: cls for cls in (Blur, Downscale, Jpeg, JpegRange, ResizeRange)}
TRANSFORMS = tuple(TRANSFORM_CLASSES)


class InputDefense(Defense):
    """One pixel transform: ``input:blur=SIGMA``, ``input:downscale=FACTOR``, ``input:jpeg=QUALITY``,
    ``input:jpeg_range=LO+HI`` or ``input:resize_range=LO+HI``; ``backward=NAME`` picks JPEG's surrogate."""

    kind = "input"
    fields = (*TRANSFORMS, "backward")
    summary = ("pixels before normalisation: blur=SIGMA | downscale=FACTOR | jpeg=QUALITY[,backward=jpeg-approx|identity] "
               "(BPDA through a differentiable JPEG by default) | jpeg_range=LO+HI | resize_range=LO+HI (randomised: EOT)")

    def __init__(self, spec: str, transform: PixelTransform):
        super().__init__(spec)
        self.transform = transform

    @property
    def randomised(self) -> bool:  # type: ignore[override]
        return self.transform.randomised

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> InputDefense:
        kind = TRANSFORM_CLASSES[fields.exactly_one(TRANSFORMS)]
        value = kind.read(fields)
        backward = fields.text("backward", kind.backwards[0], choices=kind.backwards)
        fields.finish(cls.fields)
        return cls(spec, kind(value, backward))

    def parameters(self) -> dict[str, Any]:
        return self.transform.parameters()

    def __call__(self, pixels: Tensor) -> Tensor:
        return self.transform(pixels)

    def wrap(self, classifier: Any, ctx: BuildContext, record: dict[str, Any]) -> Any:
        return classifier.then(PixelStep(self))


__all__ = ["EXACT", "InputDefense", "JPEG_BACKWARDS", "PixelTransform", "TRANSFORMS", "TRANSFORM_CLASSES",
           "downscale", "gaussian_blur", "jpeg_reencode", "straight_through", "with_surrogate_gradient"]
