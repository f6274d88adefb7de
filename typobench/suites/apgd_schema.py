"""The ``apgd`` stage as a suite writes it (``[defaults.apgd]`` applies to its own fields), and the reader
of an APGD attack table that other kinds holding an APGD attack share."""

from __future__ import annotations

import math

from typobench.adversarial.apgd import LOSSES, APGDConfig
from typobench.stages.apgd import ATTACK_ON, APGDStage
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema

TARGETS = ("untargeted", "top-k")
ATTACK_FIELDS = ("eps", "norm", "steps", "restarts", "loss", "target", "target_classes", "eot_draws")


def read_apgd_config(table: Table) -> APGDConfig:
    """The APGD attack of ``table`` (its fields :data:`ATTACK_FIELDS`); each value is checked and a bad one
    is reported naming its field. APGD-T (``target = "top-k"``) uses the targeted DLR loss unless ``loss``
    says otherwise."""
    eps = table.number("eps")
    if not 0 < eps < math.inf:  # also rejects NaN
        raise table.error("eps", f"must be a positive finite radius (e.g. \"8/255\" or 0.5 for l2), got {eps}")
    targeted = table.str("target", "untargeted", choices=TARGETS) == "top-k"
    return APGDConfig(
        eps=eps,
        norm=table.str("norm", "linf", choices=("linf", "l2")),
        steps=table.number("steps", 100, integer=True, minimum=1),
        restarts=table.number("restarts", 1, integer=True, minimum=1),
        loss=table.str("loss", "dlr" if targeted else "ce", choices=LOSSES),
        targeted=targeted,
        target_classes=table.number("target_classes", 9, integer=True, minimum=1),
        eot_draws=table.number("eot_draws", 1, integer=True, minimum=1),
    )


def build_apgd_stage(table: Table, name: str, source: str) -> APGDStage:
    config = read_apgd_config(table)
    attack_on = table.str("attack_on", "defended", choices=ATTACK_ON)
    SCHEMA.finish(table)
    return APGDStage(name, source, config, attack_on=attack_on)


SCHEMA = StageSchema(
    kind="apgd",
    build=build_apgd_stage,
    fields=(*ATTACK_FIELDS, "attack_on"),
    defaults=("apgd",),
)
