#!/usr/bin/env python
"""Build the bundled ``cifar10-sample`` (typobench/data/cifar10_sample.npz) and its manifest.

Draws ``--per-class`` images per class from the test split of the CIFAR-10 JPEG conversion with
``typobench.data.stratified_subset`` (SHA-256-keyed, so the same seed gives the same images on any
machine), decodes them with Pillow and stores the uint8 pixels, labels and source file names.

    .venv/bin/python datasets/build_cifar10_sample.py                 # rebuild (from ../shared/data)
    .venv/bin/python datasets/build_cifar10_sample.py --check         # verify the bundled file

The npz is written byte-for-byte reproducibly (fixed zip timestamps, no wall-clock metadata), so
``--check`` can compare SHA-256 digests. Run from the repository root with the project installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL

from typobench.core.atomic import write_bytes_atomic, write_json_atomic
from typobench.data import CIFAR10_CLASSNAMES, load_dataset, sample_hash, stratified_subset
from typobench.data.bundled import images_sha256

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
DEFAULT_NPZ = PROJECT_ROOT / "typobench" / "data" / "cifar10_sample.npz"
DEFAULT_MANIFEST = PROJECT_ROOT / "datasets" / "cifar10-sample.json"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: a fixed timestamp keeps the bytes reproducible


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Like ``np.savez_compressed`` but deterministic: fixed entry timestamps and order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def build(source: Path, seed: int, per_class: int) -> tuple[bytes, dict]:
    """Return the npz bytes and the manifest (without the npz's own size/hash) for this draw."""
    dataset = load_dataset("cifar10-jpeg", root=source, split="test", transform=lambda image: image)
    num_classes = len(dataset.classnames)
    indices = stratified_subset(dataset.labels, per_class * num_classes, seed)
    labels = np.array([dataset.labels[i] for i in indices], dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    if not (counts == per_class).all():
        raise SystemExit(f"source has too few images for {per_class} per class: got counts {counts.tolist()}")
    ids = [dataset.sample_ids[i] for i in indices]
    images = np.stack([np.asarray(dataset.image(i), dtype=np.uint8) for i in indices])
    metadata = {
        "name": "cifar10-sample",
        "description": f"{len(ids)} CIFAR-10 test images ({per_class} per class) from the JPEG conversion, "
        "decoded to uint8 RGB",
        "source": {
            "name": "cifar10-jpeg",
            "split": "test",
            "n": len(dataset),
            "sample_hash": sample_hash(dataset.sample_ids),
            "note": "a public JPEG conversion of CIFAR-10 (not the official pickles); pixels differ slightly",
        },
        "draw": f"typobench.data.stratified_subset(labels, limit={per_class * num_classes}, seed={seed}) over the "
        "cifar10-jpeg test split (class folders and files in sorted order); ids are '<split>/<class>/<file>'",
        "seed": seed,
        "per_class": per_class,
        "n": len(ids),
        "classnames": list(CIFAR10_CLASSNAMES),
        "image_shape": list(images.shape[1:]),
        "decoder": f"Pillow {PIL.__version__}",
        "images_sha256": images_sha256(images),
        "sample_hash": sample_hash(ids),
    }
    data = npz_bytes(
        {
            "images": images,
            "labels": labels,
            "source_files": np.array(ids),
            "metadata": np.array(json.dumps(metadata, sort_keys=True)),
        }
    )
    manifest = {
        **metadata,
        "npz": {"path": "typobench/data/cifar10_sample.npz", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        "items": [{"id": i, "label": int(y)} for i, y in zip(ids, labels)],
    }
    return data, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="cifar10-jpeg root (holds test/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--out", type=Path, default=DEFAULT_NPZ)
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--check", action="store_true", help="rebuild in memory and compare with --out/--manifest")
    args = parser.parse_args(argv)

    data, manifest = build(args.source, args.seed, args.per_class)
    if args.check:
        on_disk = args.out.read_bytes()
        recorded = json.loads(args.manifest.read_text(encoding="utf-8"))
        same_file = hashlib.sha256(on_disk).hexdigest() == manifest["npz"]["sha256"]
        same_manifest = recorded == manifest
        print(f"npz identical: {same_file}; manifest identical: {same_manifest}")
        return 0 if same_file and same_manifest else 1
    write_bytes_atomic(args.out, data)
    write_json_atomic(args.manifest, manifest)
    for path in (args.out, args.manifest):  # atomic writes create 0600 temp files; data files are world-readable
        path.chmod(0o644)
    print(f"wrote {args.out} ({len(data)} bytes, sha256 {manifest['npz']['sha256']}) and {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
