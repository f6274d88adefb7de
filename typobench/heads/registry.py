"""Every head kind ``--head`` may name: the head classes, each declaring what the harness does differently for it
(:class:`~typobench.heads.base.Head`)."""

from __future__ import annotations

from typobench.core.registry import Registry
from typobench.heads.base import Head
from typobench.heads.linear_probe import LinearProbeHead
from typobench.heads.zeroshot import ZeroShotHead

HEADS: Registry[type[Head]] = Registry("head kind", declares=Head.DECLARED)
for _head in (ZeroShotHead, LinearProbeHead):
    HEADS.add(_head.kind, _head)

__all__ = ["HEADS"]
