"""A differentiable JPEG round trip in torch, built as PIL (libjpeg) encodes and decodes at a given quality.

The ``input`` defense's JPEG keeps the real codec on the forward pass and takes its gradient from this
approximation (BPDA with a close surrogate, Athalye et al. 2018; the identity, the cheaper surrogate, leaves
most of the defense's apparent robustness standing). The steps follow libjpeg's defaults as PIL uses them:

1. RGB -> YCbCr (JFIF, full range);
2. chroma subsampling 4:2:0 (PIL's default: libjpeg averages each 2x2 block of Cb and Cr);
3. level shift by -128 and an 8x8 blockwise DCT-II (orthonormal, which is JPEG's own scaling);
4. quantisation by the IJG tables (ITU T.81 Annex K) scaled by libjpeg's quality formula, with the
   rounding replaced by Shin & Song 2017's ``round(x) + (x - round(x))**3`` (zero-gradient rounding would
   mask the gradient), then dequantisation;
5. inverse DCT, chroma upsampling as libjpeg's "fancy" triangle filter (bilinear, half-pixel centres),
   YCbCr -> RGB, clamp to [0, 255].

Sizes that are not multiples of the 16x16 MCU are padded by repeating the last row and column, as libjpeg
does, and cropped back. Shapes: ``N`` images, ``H`` x ``W`` pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# IJG / ITU T.81 Annex K tables in natural (row-major) order, as libjpeg's jcparam.c holds them.
LUMINANCE_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMINANCE_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99), (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)
BLOCK = 8
MCU = 16  # 4:2:0: one MCU is 16x16 luma pixels (2x2 luma blocks and one block of each chroma plane)

# JFIF's full-range conversion; rows are Y, Cb, Cr (inputs R, G, B) and R, G, B (inputs Y, Cb-128, Cr-128).
RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168735892, -0.331264108, 0.5), (0.5, -0.418687589, -0.081312411))
YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136286, -0.714136286), (1.0, 1.772, 0.0))


def quality_scaling(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: the percentage the base tables are scaled by at ``quality`` (1-100)."""
    quality = min(max(int(quality), 1), 100)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def quantisation_table(base: Sequence[Sequence[int]], quality: int) -> Tensor:
    """The [8,8] table libjpeg writes at ``quality``: ``(base * scale + 50) // 100`` in [1, 255] (baseline)."""
    scaled = (torch.tensor(base, dtype=torch.int64) * quality_scaling(quality) + 50) // 100
    return scaled.clamp(1, 255).double()


def smooth_round(x: Tensor) -> Tensor:
    """Rounding with a gradient (Shin & Song 2017): the value of ``round(x)`` plus a cubic residual whose
    derivative ``3 (x - round(x))**2`` is non-zero between integers."""
    rounded = torch.round(x)
    return rounded + (x - rounded) ** 3


def dct_matrix(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The orthonormal 8-point DCT-II matrix [8,8] (row u: frequency u): ``D @ block @ D.T`` is JPEG's FDCT."""
    n = torch.arange(BLOCK, dtype=torch.float64)
    matrix = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / (2 * BLOCK)) * math.sqrt(2 / BLOCK)
    matrix[0] /= math.sqrt(2)
    return matrix.to(device, dtype)


def _color(pixels: Tensor, matrix: Sequence[Sequence[float]]) -> Tensor:
    """[N,3,H,W] -> [N,3,H,W]: each pixel's 3 channels multiplied by the 3x3 ``matrix``."""
    weights = torch.tensor(matrix, device=pixels.device, dtype=pixels.dtype)
    return torch.einsum("oc,nchw->nohw", weights, pixels)


def _compress_plane(plane: Tensor, tables: Tensor) -> Tensor:
    """One component [N,h,w] (h, w multiples of 8, level-shifted) through DCT, quantisation by ``tables``
    [N,8,8], smooth rounding, dequantisation and inverse DCT; returns [N,h,w]."""
    n, h, w = plane.shape
    blocks = plane.reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK).permute(0, 1, 3, 2, 4)  # [N,bh,bw,8,8]
    dct = dct_matrix(plane.device, plane.dtype)
    coefficients = dct @ blocks @ dct.T
    table = tables[:, None, None].to(plane.dtype)
    restored = dct.T @ (smooth_round(coefficients / table) * table) @ dct
    return restored.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def _tables(quality: int | Sequence[int], n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Luminance and chrominance tables [N,8,8] for one quality or one quality per image."""
    qualities = [int(quality)] * n if isinstance(quality, int) else [int(q) for q in quality]
    if len(qualities) != n:
        raise ValueError(f"{len(qualities)} JPEG qualities for {n} images: give one, or one per image")
    luma = torch.stack([quantisation_table(LUMINANCE_TABLE, q) for q in qualities]).to(device)
    chroma = torch.stack([quantisation_table(CHROMINANCE_TABLE, q) for q in qualities]).to(device)
    return luma, chroma


def jpeg_approx(pixels: Tensor, quality: int | Sequence[int]) -> Tensor:
    """[N,3,H,W] pixels in [0,1] -> [N,3,H,W] in [0,1]: a differentiable JPEG round trip at ``quality``
    (one int, or one per image). Computed in float64 for the transform, returned in ``pixels``' dtype."""
    n, _, height, width = pixels.shape
    luma_tables, chroma_tables = _tables(quality, n, pixels.device)
    # libjpeg pads to whole MCUs by repeating the edge; the decoder drops the padding again.
    pad_h, pad_w = -height % MCU, -width % MCU
    x = F.pad(pixels.double() * 255.0, (0, pad_w, 0, pad_h), mode="replicate")
    ycbcr = _color(x, RGB_TO_YCBCR) - torch.tensor([128.0, 0.0, 0.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    luma = _compress_plane(ycbcr[:, 0], luma_tables)
    # Cb and Cr are centred on 0 already (JFIF adds 128, the level shift removes it).
    chroma = F.avg_pool2d(ycbcr[:, 1:], 2)
    chroma = torch.stack([_compress_plane(chroma[:, c], chroma_tables) for c in range(2)], dim=1)
    # libjpeg's fancy upsampling weighs the nearer chroma sample 3/4 and the farther 1/4 along each axis,
    # repeating the edge sample: that is bilinear interpolation with half-pixel centres.
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    decoded = _color(torch.cat([luma[:, None] + 128.0, chroma], dim=1), YCBCR_TO_RGB)
    return (decoded[..., :height, :width].clamp(0, 255) / 255.0).to(pixels.dtype)


__all__ = ["CHROMINANCE_TABLE", "LUMINANCE_TABLE", "dct_matrix", "jpeg_approx", "quality_scaling",
           "quantisation_table", "smooth_round"]
