"""The ``worst-case`` stage as a suite writes it: its attacks are ``[[stage.attack]]`` tables.

```toml
[[stage]]
name = "autoattack-linf-2"
kind = "worst-case"
[[stage.attack]]
kind = "apgd"        # each attack's fields are its own kind's (read by that kind's reader)
eps = "2/255"
```

``ATTACK_KINDS`` is the registry of the kinds an attack table may name: what each reads its table with,
and whether it needs no gradient (what the gradient-masking check compares the others with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typobench.adversarial.cascade import Attack
from typobench.core.registry import Registry
from typobench.stages.worst_case import ATTACK_ON, WorstCaseStage
from typobench.suites.fields import Table
from typobench.suites.apgd_schema import read_apgd_config
from typobench.suites.fab_schema import read_fab_config
from typobench.suites.pgd_schema import read_pgd_config
from typobench.suites.square_schema import read_square_config
from typobench.suites.schema import StageSchema


@dataclass(frozen=True)
class AttackKind:
    """One kind an attack table may name: how its settings are read, and whether it uses gradients."""

    kind: str
    read: Callable[[Table], Attack]
    gradient_free: bool = False


ATTACK_KINDS: Registry[AttackKind] = Registry("attack kind")
for _kind in (AttackKind("pgd", read_pgd_config), AttackKind("apgd", read_apgd_config),
              AttackKind("fab", read_fab_config), AttackKind("square", read_square_config, gradient_free=True)):
    ATTACK_KINDS.add(_kind.kind, _kind)


def read_attack(table: Table, used: set[str]) -> tuple[str, AttackKind, Attack]:
    """One ``[[stage.attack]]``: its name (default: its kind), its kind and its settings."""
    kind_name = table.str("kind")
    if kind_name not in ATTACK_KINDS:
        raise table.error("kind", str(ATTACK_KINDS.unknown(kind_name)))
    name = table.str("name", kind_name)
    if name in used:
        raise table.error("name", f"'{name}' names two attacks of this stage: give each a unique name")
    kind = ATTACK_KINDS.get(kind_name)
    attack = kind.read(table)
    table.finish()
    return name, kind, attack


def build_worst_case_stage(table: Table, name: str, source: str) -> WorstCaseStage:
    raw = table.raw("attack")
    if not isinstance(raw, list) or not raw:
        raise table.error("attack", "expected one or more [[stage.attack]] tables, each with a kind and its fields")
    attacks: list[tuple[str, str, Attack]] = []
    gradient_free: list[str] = []
    for i, item in enumerate(raw):
        attack_name, kind, attack = read_attack(Table(item, f"{table.path}.attack[{i}]", table.where),
                                                {a[0] for a in attacks})
        attacks.append((attack_name, kind.kind, attack))
        if kind.gradient_free:
            gradient_free.append(attack_name)
    attack_on = table.str("attack_on", "defended", choices=ATTACK_ON)
    SCHEMA.finish(table)
    return WorstCaseStage(name, source, attacks, attack_on=attack_on, gradient_free=gradient_free)


SCHEMA = StageSchema(kind="worst-case", build=build_worst_case_stage, fields=("attack", "attack_on"))


__all__ = ["ATTACK_KINDS", "AttackKind", "SCHEMA", "build_worst_case_stage", "read_attack"]
