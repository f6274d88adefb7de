"""Legibility: can an OCR model read the text a stage wrote? (``--legibility``: OCR costs time.)

The OCR is RapidOCR's recogniser (``rapidocr-onnxruntime``, the ``ocr`` extra; its ONNX models ship inside
the package, so it runs offline). Each sample's text is cropped to the bounding box of the stage's mask (with a
margin), upscaled to the recogniser's line height, and read without detection (the crop is the text line).
Columns: ``ocr_text`` (what was read) and ``ocr_legible`` (the written word read back, case-insensitive:
the whole reading, or one of its words when the stage wrote several copies). Rotated text is read as it stands.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
from torch import Tensor

from typobench.core.errors import UsageError

OCR_PACKAGE = "rapidocr_onnxruntime"
LINE_HEIGHT = 48  # the recogniser's input height (pixels)
MARGIN = 0.15  # of the crop's height, on every side


def require_ocr() -> None:
    """A one-line UsageError when the OCR package is missing."""
    if importlib.util.find_spec(OCR_PACKAGE) is None:
        raise UsageError("--legibility needs the OCR package rapidocr-onnxruntime, which is not installed: "
                         "pip install 'typobench[ocr]' (or rapidocr-onnxruntime), or leave out --legibility")


@functools.lru_cache(maxsize=1)
def _engine():
    require_ocr()
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def crop_text(image: Tensor, mask: Tensor) -> PIL.Image.Image | None:
    """The text of ``image`` [3,H,W] in [0,1] inside the bounding box of ``mask`` [1,H,W] (plus a margin),
    upscaled to the recogniser's line height; None when the mask is empty."""
    rows = mask.reshape(mask.shape[-2:]).any(1).nonzero().flatten()
    cols = mask.reshape(mask.shape[-2:]).any(0).nonzero().flatten()
    if len(rows) == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    pad = max(1, round(MARGIN * (bottom - top)))
    height, width = image.shape[-2:]
    top, left, bottom, right = max(0, top - pad), max(0, left - pad), min(height, bottom + pad), min(width, right + pad)
    pixels = (image[:, top:bottom, left:right].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    crop = PIL.Image.fromarray(np.ascontiguousarray(pixels))
    scale = max(1.0, 2 * LINE_HEIGHT / crop.height)
    return crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), PIL.Image.BICUBIC)


def read_text(crop: PIL.Image.Image | None) -> str:
    """What the OCR reads in ``crop`` ("" for nothing)."""
    if crop is None:
        return ""
    found, _ = _engine()(np.asarray(crop.convert("RGB")), use_det=False, use_cls=False, use_rec=True)
    return " ".join(str(item[0]) for item in (found or [])).strip()


def legible(written: str, read: str) -> bool:
    """The written word read back, case-insensitive: the whole reading, or one of its words."""
    word, seen = " ".join(written.lower().split()), " ".join(read.lower().split())
    return bool(word) and (seen == word or word in seen.split())


def legibility_columns(images: Tensor, mask: Tensor, texts: Sequence[str]) -> dict[str, Any]:
    """``ocr_text`` and ``ocr_legible`` of each sample's written text (images [N,3,H,W], mask [N,1,H,W])."""
    read = [read_text(crop_text(image, m)) for image, m in zip(images, mask)]
    return {"ocr_text": read, "ocr_legible": np.array([legible(str(t), r) for t, r in zip(texts, read)])}


__all__ = ["OCR_PACKAGE", "crop_text", "legibility_columns", "legible", "read_text", "require_ocr"]
