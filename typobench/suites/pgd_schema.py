"""The ``pgd`` stage as a suite writes it (``[defaults.pgd]`` applies to its own fields)."""

from __future__ import annotations

from typobench.adversarial.pgd import PGDConfig
from typobench.stages.pgd import ATTACK_ON, REGIONS, PGDStage
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema


def read_pgd_config(table: Table, targeted: bool = False) -> PGDConfig:
    """The attack's own settings (also a ``[[stage.attack]]`` of a worst-case cascade)."""
    return PGDConfig(
        eps=table.number("eps", minimum=0),
        step_size=table.number("step_size", minimum=0),
        steps=table.number("steps", integer=True, minimum=0),
        norm=table.str("norm", "linf", choices=("linf", "l2")),
        random_start=table.bool("random_start", True),
        restarts=table.number("restarts", 1, integer=True, minimum=1),
        loss=table.str("loss", "ce", choices=("ce", "margin")),
        targeted=targeted,
        eot_draws=table.number("eot_draws", 1, integer=True, minimum=1),
    )


def build_pgd_stage(table: Table, name: str, source: str) -> PGDStage:
    target = table.str("target", "untargeted")
    region = table.str("region", "everywhere", choices=REGIONS)
    mask_stage = table.str("mask_stage", None)
    if region != "everywhere" and mask_stage is None:
        raise table.error("mask_stage", f"region '{region}' needs mask_stage = the text stage whose sticker it uses")
    config = read_pgd_config(table, targeted=target != "untargeted")
    attack_on = table.str("attack_on", "defended", choices=ATTACK_ON)
    SCHEMA.finish(table)
    return PGDStage(name, source, config, target=target, region=region, mask_stage=mask_stage, attack_on=attack_on)


SCHEMA = StageSchema(
    kind="pgd",
    build=build_pgd_stage,
    fields=("eps", "step_size", "steps", "norm", "random_start", "restarts", "loss", "target", "region", "mask_stage",
            "attack_on", "eot_draws"),
    defaults=("pgd",),
)
