"""Data sets for typobench: a registry of named image classification data sets.

>>> from typobench.data import list_datasets, load_dataset
>>> ds = load_dataset("cifar10-sample", transform=preprocess_without_normalize)  # doctest: +SKIP
>>> pixels, label, index = ds[0]  # doctest: +SKIP

Every data set yields ``(pixels in [0, 1], label, index)``, carries its class names, zero-shot
templates and stable per-item ``sample_ids``, and can be cut down with :func:`stratified_subset`.
"""

from __future__ import annotations

from typobench.data.base import ImageDataset, ImageReadError, PixelTransform, read_rgb, stack_images
from typobench.data.classnames import CIFAR10_CLASSNAMES, CIFAR100_CLASSNAMES, imagenet_classnames, imagenet_wnids
from typobench.data import realworld  # noqa: F401  (registers materzynska, paint, rta100, scam)
from typobench.data.registry import DatasetEntry, dataset_entry, list_datasets, load_dataset, register_dataset
from typobench.data.sampling import sample_hash, stratified_subset
from typobench.data.templates import CIFAR_TEMPLATES, GENERIC_TEMPLATES, openai_imagenet_templates

__all__ = [
    "CIFAR10_CLASSNAMES",
    "CIFAR100_CLASSNAMES",
    "CIFAR_TEMPLATES",
    "GENERIC_TEMPLATES",
    "DatasetEntry",
    "ImageDataset",
    "ImageReadError",
    "PixelTransform",
    "dataset_entry",
    "imagenet_classnames",
    "imagenet_wnids",
    "list_datasets",
    "load_dataset",
    "openai_imagenet_templates",
    "read_rgb",
    "register_dataset",
    "sample_hash",
    "stack_images",
    "stratified_subset",
]
