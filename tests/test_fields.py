"""The shared field reader (``typobench.core.fields``) as suites (``Table``) and defense specs (``SpecFields``)
use it: one logic, each form's own field names and number syntax."""

from __future__ import annotations

import math
import re

import pytest

from typobench.core.errors import UsageError
from typobench.core.fields import FieldReader
from typobench.defenses.spec import SpecFields
from typobench.suites.fields import Table, parse_number


def _table(data: dict) -> Table:
    return Table(data, "stage[3].placement", "suite X")


def test_both_readers_share_the_core_reader():
    assert issubclass(Table, FieldReader) and issubclass(SpecFields, FieldReader)
    assert Table.number is SpecFields.number is FieldReader.number


def test_a_missing_required_key_is_named_in_each_form():
    with pytest.raises(UsageError, match=r"^suite X: stage\[3\]\.placement\.copies is required$"):
        _table({}).number("copies")
    with pytest.raises(UsageError, match=r"^WHERE: field 'k' is required$"):
        SpecFields({}, "WHERE").number("k")
    assert _table({}).number("copies", 2) == 2 and SpecFields({}, "WHERE").text("k", None) is None


def test_an_unknown_key_suggests_the_close_match_in_each_form():
    table = Table({"copies": 1, "polcy": "fixed"}, "stage[0]", "suite X")
    table.number("copies")
    with pytest.raises(UsageError) as caught:
        table.finish(["copies", "policy"])
    assert str(caught.value) == ("suite X: unknown field stage[0].polcy: did you mean policy? "
                                 "valid fields: copies, policy")
    fields = SpecFields({"unit": "layer4:1"}, "WHERE")
    with pytest.raises(UsageError) as caught:
        fields.check_known(["units", "mode"])
    assert str(caught.value) == "WHERE: unknown field 'unit': did you mean units? valid fields: units, mode"


def test_finish_accepts_every_key_that_was_read():
    table = _table({"x": 0.5})
    assert table.number("x") == 0.5
    table.finish()  # nothing left over
    fields = SpecFields({"k": "3"}, "WHERE")
    fields.number("k", integer=True)
    fields.finish(["k"])


@pytest.mark.parametrize("make, message", [
    (lambda d: _table(d), "suite X: stage[3].placement.copies: must be >= 1, got 0"),
    (lambda d: SpecFields(d, "WHERE"), "WHERE: field 'copies': must be >= 1, got 0"),
])
def test_number_bounds_name_the_field(make, message):
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        make({"copies": 0}).number("copies", minimum=1)
    with pytest.raises(UsageError, match=r"must be <= 4, got 5"):
        make({"copies": 5}).number("copies", maximum=4)
    with pytest.raises(UsageError, match=r"expected an integer, got 2.5"):
        make({"copies": 2.5}).number("copies", integer=True)
    assert make({"copies": 4}).number("copies", minimum=1, maximum=4, integer=True) == 4


def test_a_table_number_is_a_toml_number_inf_or_a_fraction_kept_as_given():
    assert _table({"eps": "8/255"}).number("eps") == pytest.approx(8 / 255)
    assert _table({"eps": "inf"}).number("eps") == math.inf
    value = _table({"n": 3}).number("n")
    assert value == 3 and type(value) is int  # unconverted unless integer=True
    assert parse_number(" 1/4 ", ValueError) == 0.25
    with pytest.raises(UsageError, match=r'^suite X: stage\[3\]\.placement\.eps: expected a number or a fraction '
                                         r'like "8/255", got \'8/0\'$'):
        _table({"eps": "8/0"}).number("eps")
    with pytest.raises(UsageError, match=r"expected a number, got True"):
        _table({"eps": True}).number("eps")


def test_a_spec_number_is_finite_text_or_toml_and_recorded_as_float():
    value = SpecFields({"alpha": "1"}, "WHERE").number("alpha")
    assert value == 1.0 and type(value) is float  # fingerprints hash the recorded value
    assert SpecFields({"alpha": 1}, "WHERE").number("alpha", integer=True) == 1
    with pytest.raises(UsageError, match=r"^WHERE: field 'eps': expected a number, got '8/255'$"):
        SpecFields({"eps": "8/255"}, "WHERE").number("eps")
    with pytest.raises(UsageError, match=r"^WHERE: field 'eps': expected an integer, got 'inf'$"):
        SpecFields({"eps": "inf"}, "WHERE").number("eps", integer=True)
    with pytest.raises(UsageError, match=r"must be >= 0.5, got 1e-3$"):  # the value as written
        SpecFields({"alpha": "1e-3"}, "WHERE").number("alpha", minimum=0.5)


def test_string_choices_differ_only_where_the_forms_do():
    with pytest.raises(UsageError, match=r"^suite X: stage\[3\]\.placement\.policy: 'fixd' is not one of fixed, "
                                         r"random$"):
        _table({"policy": "fixd"}).str("policy", choices=["fixed", "random"])
    with pytest.raises(UsageError, match=r"^WHERE: field 'mode': 'zreo' is not one of zero, mean "
                                         r"\(did you mean zero\?\)$"):
        SpecFields({"mode": "zreo"}, "WHERE").text("mode", choices=["zero", "mean"])
    assert _table({"label": ""}).str("label") == ""
    with pytest.raises(UsageError, match=r"expected a non-empty string, got ''"):
        SpecFields({"label": ""}, "WHERE").text("label")


def test_a_nested_table_names_its_fields_by_path():
    nested = Table({"style": {"size": "big"}}, "stage[1]", "suite X").table("style")
    with pytest.raises(UsageError, match=r"^suite X: stage\[1\]\.style\.size: expected a number"):
        nested.number("size")
    with pytest.raises(UsageError, match=r"^suite X: \(top level\) must be a table, got int$"):
        Table(3, "(top level)", "suite X")
