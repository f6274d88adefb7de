"""Device and precision, decided once at the top of a run and passed down."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager

import torch

from typobench.core.errors import UsageError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"--device '{name}' is not a device: use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    return device


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision the model runs. Weights stay fp32; fp16/bf16 use autocast."""

    device: torch.device
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision '{self.precision}' is unknown: use one of {', '.join(PRECISIONS)}")

    @classmethod
    def create(cls, device: str = "auto", precision: str = "fp32") -> "Runtime":
        return cls(resolve_device(device), precision)

    def autocast(self) -> ContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def compute_record(precision: str) -> dict[str, Any]:
    """How this process computes, beyond the device: float sums are reduced in an order that depends on
    the intra-op thread count, so two counts give predictions that differ in the last bits."""
    return {"threads": torch.get_num_threads(), "precision": precision,
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def adopt_compute(recorded: dict[str, Any]) -> list[str]:
    """Compute as ``recorded`` (threads and the deterministic flag; a precision is part of the run's key):
    what this process changed, e.g. ``["threads 2 -> 1"]``."""
    changes = []
    threads = int(recorded.get("threads", torch.get_num_threads()))
    if threads != torch.get_num_threads():
        changes.append(f"intra-op threads {torch.get_num_threads()} -> {threads}")
        torch.set_num_threads(threads)
    deterministic = bool(recorded.get("deterministic", torch.are_deterministic_algorithms_enabled()))
    if deterministic != torch.are_deterministic_algorithms_enabled():
        changes.append(f"deterministic algorithms {not deterministic} -> {deterministic}")
        torch.use_deterministic_algorithms(deterministic)
    return changes
