"""Classifier heads on top of the image tower: zero-shot and linear probe."""

from typobench.heads.base import Head
from typobench.heads.linear_probe import DEFAULT_WEIGHT_DECAYS, LinearProbeHead, ProbeReport, fit_logistic_regression, train_linear_probe
from typobench.heads.registry import HEADS
from typobench.heads.zeroshot import ZeroShotHead, zeroshot_class_embeddings

__all__ = [
    "DEFAULT_WEIGHT_DECAYS",
    "HEADS",
    "Head",
    "LinearProbeHead",
    "ProbeReport",
    "ZeroShotHead",
    "fit_logistic_regression",
    "train_linear_probe",
    "zeroshot_class_embeddings",
]
