"""What a head is: a module from image features [N,D] to logits [N,C], whose class declares what the harness
does differently for its kind (registered in ``heads.registry``; ``--head`` names the kind)."""

from __future__ import annotations

from typing import ClassVar

from torch import nn


class Head(nn.Module):
    """A classifier head on the image tower's features. Every kind sets the class attributes in ``DECLARED``
    (checked when it is registered)."""

    DECLARED: ClassVar[tuple[str, ...]] = ("kind", "prompts", "leader_builds_first", "called")

    kind: ClassVar[str]  # the name ``--head`` takes
    # Made from zero-shot prompts (templates around the class names): prompt defenses change it. A head without
    # prompts is fitted on the data set's train split.
    prompts: ClassVar[bool]
    # Across processes, rank 0 builds it first (and caches it) and the others read it back; otherwise every
    # rank builds its share (a probe's features) together.
    leader_builds_first: ClassVar[bool]
    called: ClassVar[str]  # how a message names a head of this kind ("zero-shot needs at least 2 classes")


__all__ = ["Head"]
