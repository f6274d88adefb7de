"""The ``paste`` stage as a suite writes it."""

from __future__ import annotations

from typobench.stages.paste import PasteStage
from typobench.suites.fields import Table
from typobench.suites.schema import StageSchema


def build_paste_stage(table: Table, name: str, source: str) -> PasteStage:
    donor = table.str("donor_stage")
    mask_stage = table.str("mask_stage")
    shift = table.number("shift", 1, integer=True, minimum=1)
    SCHEMA.finish(table)
    return PasteStage(name, source, donor, mask_stage, shift)


SCHEMA = StageSchema(kind="paste", build=build_paste_stage, fields=("donor_stage", "mask_stage", "shift"))
