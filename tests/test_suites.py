"""Suite files: parsing, errors that name the field, and every shipped suite loads."""

from __future__ import annotations

import math

import pytest

from typobench.core.errors import UsageError
from typobench.stages import PGDStage, TextStage
from typobench.suites import list_suites, read_suite, parse_suite

SHIPPED = {"default", "goh2021-imagenet", "random-wrong-label", "true-label-sticker", "control-word",
           "fort2021-cifar10", "fort2021-unbounded", "pgd-eps-sweep"}

MINIMAL = b'''
name = "mini"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "word"
kind = "text"
text = "cat"
target = "cat"
[stage.style]
size = 0.2
[stage.placement]
policy = "fixed"
x = 0.5
y = 0.5
'''


def test_every_shipped_suite_is_listed_and_parses():
    assert SHIPPED <= set(list_suites())
    for name in list_suites():
        suite = read_suite(name)
        assert suite.stages and suite.stages[0].name == "clean"
        assert len(suite.sha256) == 64


def test_suite_hash_changes_with_content():
    a = parse_suite(MINIMAL)
    b = parse_suite(MINIMAL.replace(b"size = 0.2", b"size = 0.25"))
    assert a.sha256 != b.sha256


def test_goh_suite_states_the_published_pairs():
    suite = read_suite("goh2021-imagenet")
    pairs = {s.name: s.target for s in suite.stages if isinstance(s, TextStage)}
    assert pairs == {"trash": "trash can", "iPod": "iPod", "pizza": "pizza", "rifle": "rifle", "radio": "radio",
                     "library": "library", "shark": "great white shark", "meow": "Siamese cat", "$$$": "piggy bank"}
    assert all(s.placement.to_dict()["params"]["n"] == 8 for s in suite.stages if isinstance(s, TextStage))


def test_fort_suite_chains_stages_and_states_eps():
    suite = read_suite("fort2021-cifar10")
    stages = {s.name: s for s in suite.stages}
    assert [s.source for s in suite.stages[1:5]] == ["clean", "sticker-1", "pgd-1", "sticker-2"]
    assert stages["pgd-1"].config.eps == pytest.approx(4 / 255) and stages["pgd-1"].config.steps == 20
    assert stages["pgd-sticker-only"].region == "inside" and stages["pgd-outside-sticker"].region == "outside"
    unbounded = read_suite("fort2021-unbounded")
    assert all(math.isinf(s.config.eps) for s in unbounded.stages if isinstance(s, PGDStage))


def test_eps_sweep_covers_half_to_eight_with_and_without_sticker():
    suite = read_suite("pgd-eps-sweep")
    pgd = [s for s in suite.stages if isinstance(s, PGDStage)]
    eps = sorted({round(s.config.eps * 255, 3) for s in pgd})
    assert eps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert {s.source for s in pgd} == {"clean", "sticker"}


def test_control_and_wrong_label_share_one_style():
    suite = read_suite("control-word")
    wrong, control = suite.stages[1], suite.stages[2]
    assert wrong.describe()["style"] == control.describe()["style"]
    assert wrong.placement.to_dict() == control.placement.to_dict()


def test_blank_bar_covers_like_the_control_word_without_letters():
    import numpy as np

    from typobench.typographic import render_patch

    suite = read_suite("control-word")
    control, bar = suite.stages[2], suite.stages[3]
    assert bar.name == "blank-bar" and bar.words.words == control.words.words
    assert bar.placement.to_dict() == control.placement.to_dict()
    for word in control.words.words:
        patch = render_patch(bar.style.sample(word, np.random.default_rng(0)), 64)
        opaque = patch[3] > 0
        assert opaque.all()  # a solid rectangle: no transparent gaps between letters
        assert (patch[:3] - patch[:3, :1, :1]).abs().max() < 1e-6  # one colour: the letters are invisible
        assert patch.shape[-1] > patch.shape[-2]  # as wide as a written word


@pytest.mark.parametrize(("change", "field"), [
    ((b'kind = "text"', b'kind = "txt"'), "stage kind"),
    ((b"size = 0.2", b"sise = 0.2"), "stage[1].style"),
    ((b"x = 0.5", b"x = -3.5"), "stage[1].placement"),
    ((b'target = "cat"', b'target = 3'), "stage[1].target"),
    ((b'name = "word"', b'name = "word"\nsource = "later"'), "later"),
    ((b'text = "cat"', b'text = "cat"\ncolour = "red"'), "stage[1].colour"),
])
def test_bad_field_gives_an_error_naming_it(change, field):
    bad = MINIMAL.replace(*change)
    with pytest.raises(UsageError) as info:
        parse_suite(bad, where="suite test")
    message = str(info.value)
    assert field in message and "\n" not in message


def test_pgd_field_errors_name_the_field():
    text = b'''
name = "p"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "pgd"
kind = "pgd"
eps = "8/255"
step_size = "2/255"
steps = -1
'''
    with pytest.raises(UsageError, match=r"stage\[1\]\.steps"):
        parse_suite(text)
    with pytest.raises(UsageError, match="mask_stage"):
        parse_suite(text.replace(b"steps = -1", b'steps = 3\nregion = "inside"'))
    suite = parse_suite(text.replace(b"steps = -1", b"steps = 3"))
    assert suite.stages[1].config.eps == pytest.approx(8 / 255)


def test_unknown_suite_name_suggests_close_matches():
    with pytest.raises(UsageError, match="fort2021-cifar10"):
        read_suite("fort2021-cifar")


def test_invalid_toml_is_one_line_error():
    with pytest.raises(UsageError, match="not valid TOML"):
        parse_suite(b"name = [")


def test_target_class_missing_from_dataset_is_reported():
    suite = read_suite("goh2021-imagenet")
    with pytest.raises(UsageError, match="trash can"):
        suite.check(["airplane", "cat"])


def test_neurons_table_becomes_the_analysis_options():
    suite = parse_suite(MINIMAL + b'[neurons]\nstages = ["word"]\ntop_k = 4\ndraws = 3\nmodes = ["zero"]\ntau_text = 1.5\n')
    assert suite.neurons == {"top_k": 4, "draws": 3, "tau_text": 1.5, "stages": ["word"], "modes": ("zero",)}
    assert suite.describe()["neurons"] == suite.neurons
    assert parse_suite(MINIMAL).neurons is None


@pytest.mark.parametrize(("table", "expected"), [
    (b"topk = 4", "unknown field neurons.topk: did you mean top_k?"),
    (b"top_k = 0", "neurons.top_k must be a positive integer"),
    (b"top_k = 2.5", "neurons.top_k"),
    (b'stages = ["nope"]', "neurons.stages names 'nope', which is not an attack stage of the suite: use word"),
    (b'stages = ["clean"]', "not an attack stage"),
    (b'modes = ["half"]', "neurons.modes 'half' is unknown: use zero, mean"),
    (b'rank_by = "loudest"', "neurons.rank_by 'loudest' is unknown"),
    (b"stages = []", "neurons.stages: expected a non-empty list"),
    (b"stages = [3]", "neurons.stages: must be a non-empty list of strings"),
])
def test_bad_neurons_table_names_the_field(table, expected):
    with pytest.raises(UsageError) as info:
        parse_suite(MINIMAL + b"[neurons]\n" + table + b"\n")
    message = str(info.value)
    assert message.startswith("suite mini: ") and expected in message and "\n" not in message


def test_the_wrong_label_stages_of_default_control_word_and_defend_are_one_stage():
    """Cards and boards compare the written-class rate across these suites: the stage must be the same one (its
    name seeds the words and placements drawn, its fields the style), so the same images give the same rows."""
    described = {name: next(s.describe() for s in read_suite(name).stages if s.name == "random-wrong-label")
                 for name in ("default", "control-word", "defend")}
    assert described["default"] == described["control-word"] == described["defend"]
