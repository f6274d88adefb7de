"""Classifier heads on top of the image tower: zero-shot and linear probe."""

from typobench.heads.linear_probe import DEFAULT_WEIGHT_DECAYS, LinearProbeHead, ProbeReport, fit_logistic_regression, train_linear_probe
from typobench.heads.zeroshot import ZeroShotHead, zeroshot_class_embeddings

HEAD_KINDS = ("zeroshot", "linear-probe")

__all__ = [
    "DEFAULT_WEIGHT_DECAYS",
    "HEAD_KINDS",
    "LinearProbeHead",
    "ProbeReport",
    "ZeroShotHead",
    "fit_logistic_regression",
    "train_linear_probe",
    "zeroshot_class_embeddings",
]
