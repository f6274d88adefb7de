"""The ``square`` stage as a suite writes it (``[defaults.square]`` applies to its own fields)."""

from __future__ import annotations

from typobench.adversarial.square import SquareConfig
from typobench.core.errors import UsageError
from typobench.stages.square import ATTACK_ON, SquareStage
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema

CONFIG_FIELDS = ("eps", "norm", "queries", "p_init", "restarts")


def read_square_config(table: Table) -> SquareConfig:
    """The Square Attack settings of ``table`` (a stage, or an attack sub-table of another kind), every field
    checked and named in errors; the caller rejects the keys it does not know."""
    eps = table.number("eps", minimum=0)
    if not 0 < eps < float("inf"):
        raise table.error("eps", f"must be a positive finite number such as \"8/255\", got {eps}")
    fields = dict(eps=eps, norm=table.str("norm", "linf", choices=("linf", "l2")),
                  queries=table.number("queries", 5000, integer=True, minimum=1),
                  p_init=table.number("p_init", 0.8, minimum=0, maximum=1),
                  restarts=table.number("restarts", 1, integer=True, minimum=1))
    try:
        return SquareConfig(**fields)
    except UsageError as exc:  # a rule the reader does not know (p_init = 0): still name the field
        field = next((name for name in CONFIG_FIELDS if f" {name} " in str(exc)), "eps")
        raise table.error(field, str(exc)) from None


def build_square_stage(table: Table, name: str, source: str) -> SquareStage:
    config = read_square_config(table)
    attack_on = table.str("attack_on", "defended", choices=ATTACK_ON)
    SCHEMA.finish(table)
    return SquareStage(name, source, config, attack_on=attack_on)


SCHEMA = StageSchema(kind="square", build=build_square_stage, fields=(*CONFIG_FIELDS, "attack_on"),
                     defaults=("square",))
