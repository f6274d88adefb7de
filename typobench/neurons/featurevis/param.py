"""Image parameterisations: what the optimiser changes, and how it becomes [0,1] pixels.

* ``fourier`` (Olah et al. 2017, "Feature Visualization"; Lucid): the image is the inverse real FFT of a
  learned spectrum whose coefficients are scaled by 1/f (f the spatial frequency, floored at one cycle
  per image), so that every frequency starts with comparable gradient and high frequencies do not win
  by default; the three channels live in a *decorrelated* colour space, mapped to RGB by the square root
  of ImageNet's colour covariance, then through a sigmoid into [0, 1].
* ``pixel``: one free logit per pixel and channel, through a sigmoid: the naive baseline, kept for
  comparison (it drifts into high-frequency patterns).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from typobench.core.registry import Registry

# sqrt of ImageNet's RGB covariance (Lucid's constant), columns scaled to unit max norm below:
# multiplies decorrelated channels [3] into correlated RGB [3].
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOUR_CORRELATION = COLOUR_CORRELATION_SQRT / COLOUR_CORRELATION_SQRT.norm(dim=0).max()
INIT_STD = 0.01


def frequencies(height: int, width: int) -> Tensor:
    """[H, W//2+1]: the radial spatial frequency (cycles per pixel) of each rfft2 coefficient."""
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    return (fy * fy + fx * fx).sqrt()


class FourierImage(nn.Module):
    """``forward() -> [B, 3, H, W]`` in (0, 1): a 1/f-scaled spectrum in decorrelated colour."""

    def __init__(self, batch: int, height: int, width: int, generator: torch.Generator, decay: float = 1.0):
        super().__init__()
        shape = (batch, 3, height, width // 2 + 1, 2)
        self.spectrum = nn.Parameter(torch.randn(shape, generator=generator) * INIT_STD)
        scale = 1.0 / frequencies(height, width).clamp_min(1.0 / max(height, width)) ** decay
        # With the orthonormal inverse FFT, a coefficient of size s moves the pixels by about s whatever the size.
        self.register_buffer("scale", scale)
        self.size = (height, width)

    def forward(self) -> Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        decorrelated = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        return torch.sigmoid(decorrelate_colours(decorrelated))


class PixelImage(nn.Module):
    """``forward() -> [B, 3, H, W]`` in (0, 1): one free logit per pixel and channel."""

    def __init__(self, batch: int, height: int, width: int, generator: torch.Generator):
        super().__init__()
        self.logits = nn.Parameter(torch.randn((batch, 3, height, width), generator=generator) * INIT_STD)

    def forward(self) -> Tensor:
        return torch.sigmoid(self.logits)


def decorrelate_colours(images: Tensor) -> Tensor:
    """[B, 3, H, W] in decorrelated colour -> the same in RGB (before the sigmoid)."""
    return torch.einsum("bchw,rc->brhw", images, COLOUR_CORRELATION.to(images.dtype))


IMAGES: Registry[type[nn.Module]] = Registry("image parameterisation")
IMAGES.add("fourier", FourierImage)
IMAGES.add("pixel", PixelImage)


def make_image(kind: str, batch: int, side: int, generator: torch.Generator) -> nn.Module:
    """A parameterised image of ``batch`` x 3 x side x side; ``kind`` a name in :data:`IMAGES`."""
    return IMAGES.get(kind)(batch, side, side, generator)
