"""The ``fab`` stage as a suite writes it (``[defaults.fab]`` applies to its own fields)."""

from __future__ import annotations

from typobench.adversarial.fab import FABConfig
from typobench.core.errors import UsageError
from typobench.stages.fab import ATTACK_ON, FABStage
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema

CONFIG_FIELDS = ("eps", "norm", "steps", "restarts", "target_classes", "alpha_max", "eta", "beta")


def read_fab_config(table: Table) -> FABConfig:
    """The FAB-T settings of ``table`` (a stage, or an attack sub-table of another kind), every field checked
    and named in errors; the caller rejects the keys it does not know."""
    eps = table.number("eps", minimum=0)
    if not 0 < eps < float("inf"):
        raise table.error("eps", f"must be a positive finite number such as \"8/255\", got {eps}")
    fields = dict(eps=eps, norm=table.str("norm", "linf", choices=("linf", "l2")),
                  steps=table.number("steps", 100, integer=True, minimum=1),
                  restarts=table.number("restarts", 1, integer=True, minimum=1),
                  target_classes=table.number("target_classes", 9, integer=True, minimum=1),
                  alpha_max=table.number("alpha_max", 0.1, minimum=0, maximum=1),
                  eta=table.number("eta", 1.05, minimum=1),
                  beta=table.number("beta", 0.9, minimum=0, maximum=1))
    try:
        return FABConfig(**fields)
    except UsageError as exc:  # a rule the reader does not know (beta = 0, eta = inf): still name the field
        field = next((name for name in CONFIG_FIELDS if f" {name} " in str(exc)), "eps")
        raise table.error(field, str(exc)) from None


def build_fab_stage(table: Table, name: str, source: str) -> FABStage:
    config = read_fab_config(table)
    attack_on = table.str("attack_on", "defended", choices=ATTACK_ON)
    SCHEMA.finish(table)
    return FABStage(name, source, config, attack_on=attack_on)


SCHEMA = StageSchema(kind="fab", build=build_fab_stage, fields=(*CONFIG_FIELDS, "attack_on"), defaults=("fab",))
