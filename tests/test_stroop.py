"""``typobench stroop``: stimuli, rendering, scoring, the zero-shot path and the CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.experiments.stroop import run_stroop
from typobench.typographic.stroop import (
    DEFAULT_PALETTE,
    GOH_PROMPT,
    check_prompts,
    classify_stimuli,
    parse_palette,
    render_stimuli,
    score_stroop,
    stroop_design,
    stroop_stimuli,
)
from typobench.harness.config import RunConfig
from typobench.harness.session import Session
from typobench.models import load_model

COLOUR_PROMPT = "a photo of the color {}"


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn", device="cpu")


def _session(model, cache_dir, **options) -> Session:
    """A session without data over an already loaded model (the Python API's way)."""
    config = RunConfig(model="tiny-rn", device="cpu", cache_dir=str(cache_dir), **options)
    return Session.of(config, Runtime(torch.device("cpu")), model, None)


def _counts(stimuli):
    return {kind: sum(s.kind == kind for s in stimuli) for kind in ("congruent", "incongruent", "neutral")}


def test_default_stimulus_set_is_goh_et_al():
    stimuli = stroop_stimuli()
    assert len(stimuli) == 64
    assert _counts(stimuli) == {"congruent": 7, "incongruent": 49, "neutral": 8}
    assert {s.ink for s in stimuli} == set(DEFAULT_PALETTE)
    assert {s.word for s in stimuli} == set(DEFAULT_PALETTE) - {"black"} | {"example"}
    assert not any(s.kind == "congruent" and s.ink == "black" for s in stimuli)
    assert all(s.word_colour is None for s in stimuli if s.word == "example")


def test_every_font_and_size_repeats_the_full_set():
    stimuli = stroop_stimuli(fonts=["sans", "serif"], sizes=["0.15", "12"])
    assert len(stimuli) == 64 * 4
    assert _counts(stimuli) == {"congruent": 28, "incongruent": 196, "neutral": 32}
    combos = {(s.font, s.size) for s in stimuli}
    assert combos == {("sans", 0.15), ("sans", 12), ("serif", 0.15), ("serif", 12)}
    for combo in combos:
        assert _counts([s for s in stimuli if (s.font, s.size) == combo]) == {"congruent": 7, "incongruent": 49, "neutral": 8}


@pytest.mark.parametrize("ink, background, side", [("red", "white", 224), ("yellow", "#203040", 224), ("blue", "white", 64)])
def test_rendered_stimulus_has_ink_on_background(ink, background, side):
    design = stroop_design(background=background)
    stimulus = next(s for s in stroop_stimuli(design) if s.ink == ink and s.word == "green")
    image = render_stimuli([stimulus], design, (side, side))[0]
    ink_rgb = torch.tensor(DEFAULT_PALETTE[ink], dtype=torch.float32).view(3, 1, 1) / 255
    bg_rgb = torch.tensor(design.background, dtype=torch.float32).view(3, 1, 1) / 255
    # Every pixel is background, ink, or an anti-aliased blend of the two -- no other colour.
    t = ((image - bg_rgb) * (ink_rgb - bg_rgb)).sum(0) / ((ink_rgb - bg_rgb) ** 2).sum()
    assert torch.allclose(image, bg_rgb + t * (ink_rgb - bg_rgb), atol=1e-5)
    assert t.min() >= -1e-6 and t.max() <= 1 + 1e-6
    inked = (image - ink_rgb).abs().amax(0) < 1e-6
    blank = (image - bg_rgb).abs().amax(0) < 1e-6
    assert inked.sum() >= (100 if side == 224 else 1)  # fully covered glyph pixels are exactly the ink colour
    assert blank[:5].all() and blank[-5:].all() and blank[:, :5].all() and blank[:, -5:].all()
    # The word is centred.
    ys, xs = torch.nonzero(~blank, as_tuple=True)
    centre = (side - 1) / 2
    assert abs((xs.min() + xs.max()).item() / 2 - centre) <= 1.5
    assert abs((ys.min() + ys.max()).item() / 2 - centre) <= 1.5


def _one_hot(stimuli, classnames, pick):
    index = {name: i for i, name in enumerate(classnames)}
    logits = torch.zeros(len(stimuli), len(classnames))
    for row, stimulus in enumerate(stimuli):
        logits[row, index[pick(stimulus)]] = 5.0
    return logits


def test_scoring_a_classifier_that_reads_the_word():
    design = stroop_design()
    stimuli = stroop_stimuli(design)
    logits = _one_hot(stimuli, design.classnames, lambda s: s.word_colour or "black")
    scored = score_stroop(stimuli, logits, design.classnames)
    m = scored["metrics"]
    assert m["word_named"]["value"] == 1.0 and m["word_named"]["n"] == 49
    assert m["incongruent_accuracy"]["value"] == 0.0 and m["incongruent_accuracy"]["n"] == 49
    assert m["congruent_accuracy"]["value"] == 1.0 and m["congruent_accuracy"]["n"] == 7
    assert m["neutral_accuracy"]["value"] == pytest.approx(1 / 8) and m["neutral_accuracy"]["n"] == 8  # black ink only
    lo, hi = m["incongruent_accuracy"]["ci95"]
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.0 < hi < 0.1  # Wilson interval, not a degenerate [0, 0]
    kinds = np.array([s.kind for s in stimuli])
    assert set(scored["outcome"][kinds == "incongruent"]) == {"word"}


def test_scoring_mixed_outcomes():
    design = stroop_design()
    stimuli = stroop_stimuli(design)
    # Right on red ink, the word on blue ink, "pink" everywhere else.
    pick = {"red": lambda s: s.ink, "blue": lambda s: s.word_colour or "pink"}
    logits = _one_hot(stimuli, design.classnames, lambda s: pick.get(s.ink, lambda s: "pink")(s))
    scored = score_stroop(stimuli, logits, design.classnames)
    m = scored["metrics"]
    # Right: 6 incongruent words in red ink + 6 in pink ink. Word: 6 in blue ink + "pink" in the 5 other inks.
    assert m["incongruent_accuracy"]["value"] == pytest.approx(12 / 49)
    assert m["word_named"]["value"] == pytest.approx(11 / 49)
    assert m["neutral_accuracy"]["value"] == pytest.approx(2 / 8)  # red ink and pink ink


class InkReader(torch.nn.Module):
    """A fake classifier that names the palette colour nearest to the pixel farthest from white."""

    def __init__(self, palette):
        super().__init__()
        self.register_buffer("inks", torch.tensor(list(palette.values()), dtype=torch.float32) / 255)

    def forward(self, pixels):
        flat = pixels.flatten(2)  # [N, 3, HW]
        far = (1 - flat).abs().sum(1).argmax(1)  # the most inked pixel
        colour = flat[torch.arange(len(pixels)), :, far]  # [N, 3]
        return -torch.cdist(colour, self.inks)


def test_run_stroop_with_a_classifier_that_reads_the_ink(tiny_rn, tmp_path):
    reader = InkReader(DEFAULT_PALETTE)
    words = lambda x: torch.zeros(len(x), 8)  # noqa: E731 -- always "black"
    session = _session(tiny_rn, tmp_path, batch_size=10)
    result = run_stroop(session, [GOH_PROMPT, COLOUR_PROMPT], classifiers={GOH_PROMPT: reader, COLOUR_PROMPT: words})
    ink, black = result.metrics
    assert ink["incongruent_accuracy"]["value"] == 1.0
    assert ink["word_named"]["value"] == 0.0
    assert ink["congruent_accuracy"]["value"] == 1.0 and ink["neutral_accuracy"]["value"] == 1.0
    assert black["incongruent_accuracy"]["value"] == pytest.approx(7 / 49)  # the black-ink row
    assert black["congruent_accuracy"]["value"] == 0.0 and black["word_named"]["value"] == 0.0
    frame = result.frame()
    assert len(frame) == 2 * 64
    assert list(frame.columns[:2]) == ["prompt_index", "prompt"]
    assert {"word", "ink", "font", "size", "prompt", "pred", "p_ink", "p_word", "outcome"} <= set(frame.columns)
    assert frame.loc[frame["word"] == "example", "p_word"].isna().all()
    assert (frame.loc[(frame["prompt_index"] == 0), "outcome"] == "ink").all()
    assert result.image_size == tiny_rn.image_size
    assert [p.head for p in result.prompts] == [{"kind": "custom"}, {"kind": "custom"}]
    assert not list(tmp_path.iterdir())  # no zero-shot head was built for a prompt with its own classifier


def test_zeroshot_path_matches_the_classifier_on_pixels(tiny_rn, tmp_path):
    session = _session(tiny_rn, tmp_path)
    design = stroop_design()
    stimuli = stroop_stimuli(design)
    classifiers = [session.zeroshot_classifier(design.classnames, [p])[0] for p in (GOH_PROMPT, COLOUR_PROMPT)]
    shared = classify_stimuli(stimuli, design, tiny_rn.image_size, classifiers, runtime=session.runtime, batch_size=16)
    with torch.no_grad():
        pixels = render_stimuli(stimuli, design, tiny_rn.image_size)
        direct = [c(pixels) for c in classifiers]
    for got, expected in zip(shared, direct):
        assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(direct[0], direct[1])  # the prompt changes the class embeddings
    result = run_stroop(session, [GOH_PROMPT, COLOUR_PROMPT])
    assert torch.equal(torch.as_tensor(result.prompts[1].pred), direct[1].argmax(1))
    assert result.prompts[0].head["templates"] == [GOH_PROMPT]


def test_palette_parsing():
    palette = parse_palette("ink=#102030, red, Teal=teal")
    assert palette == {"ink": (16, 32, 48), "red": DEFAULT_PALETTE["red"], "Teal": (0, 128, 128)}
    assert list(palette) == ["ink", "red", "Teal"]


@pytest.mark.parametrize("palette", ["red=#ff0000,blurple", "red=#ff0000,=blue", "red=,blue", "red=#ff0000,blue=notacolour",
                                     "red", "red=#ff0000,,blue", "red,Red", "red=#f00=x,blue"])
def test_bad_palette_is_a_usage_error(palette):
    with pytest.raises(UsageError):
        stroop_design(palette)


def test_other_bad_designs_are_usage_errors():
    with pytest.raises(UsageError, match="no '\\{\\}'"):
        check_prompts(["a photo of a colour"])
    with pytest.raises(UsageError):
        check_prompts(["the {color} {}"])
    with pytest.raises(UsageError, match="palette colour"):
        stroop_design(neutral="red")
    with pytest.raises(UsageError, match="background"):
        stroop_design(background="#000000")
    with pytest.raises(UsageError, match="not a palette colour"):
        stroop_design(words=["red", "cyan"])
    design = stroop_design(sizes=[0.4])
    with pytest.raises(UsageError, match="does not fit"):
        render_stimuli(stroop_stimuli(design), design, (64, 64))


def test_cli_writes_json_csv_and_one_picture_per_prompt(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["stroop", "--model", "tiny-rn", "--device", "cpu", "--prompt", GOH_PROMPT, "--prompt", COLOUR_PROMPT,
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "word named" in printed and COLOUR_PROMPT in printed
    record = json.loads((out / "stroop.json").read_text())
    # The result envelope every command writes comes first, then the Stroop fields.
    assert list(record)[:9] == ["schema_version", "kind", "created", "versions", "config_hash", "seed", "config",
                                "model", "dataset"]
    assert record["kind"] == "stroop" and record["dataset"] is None and record["seed"] == 0
    assert record["config"]["prompts"] == [GOH_PROMPT, COLOUR_PROMPT] and record["config"]["precision"] == "fp32"
    assert record["config"]["device_resolved"] == "cpu" and len(record["config_hash"]) == 64
    assert "git_commit" in record["versions"]
    assert record["prompts"] == [GOH_PROMPT, COLOUR_PROMPT]
    assert record["model"]["label"] == "tiny-rn" and len(record["model"]["weights_sha256"]) == 64
    assert record["fonts"][0]["name"] == "sans" and len(record["fonts"][0]["sha256"]) == 64
    assert record["palette"]["red"] == "#ff0000" and record["sizes"] == [0.18]
    assert record["counts"] == {"congruent": 7, "incongruent": 49, "neutral": 8}
    for entry in record["results"]:
        metrics = entry["metrics"]
        assert [metrics[k]["n"] for k in ("congruent_accuracy", "incongruent_accuracy", "word_named", "neutral_accuracy")] == [7, 49, 49, 8]
        value = metrics["word_named"]["value"]
        assert 0 <= value <= 1 and math.isfinite(value)
    with open(out / "stroop.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 64
    assert {r["prompt"] for r in rows} == {GOH_PROMPT, COLOUR_PROMPT}
    for i in range(2):
        with Image.open(out / f"stroop_{i}.png") as picture:
            assert picture.format == "PNG" and picture.width > 400
    assert not (out / "stroop_2.png").exists()


def test_cli_bad_palette_exits_2_with_one_line(tmp_path, capsys):
    code = main(["stroop", "--model", "tiny-rn", "--device", "cpu", "--palette", "red=#ff0000,blurple",
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "blurple" in err and err.startswith("typobench: error:")
    assert not (tmp_path / "out").exists()


def test_cli_prompt_without_placeholder_exits_2(tmp_path, capsys):
    code = main(["stroop", "--model", "tiny-rn", "--device", "cpu", "--prompt", "a photo of a colour",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
