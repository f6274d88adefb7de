"""toyclip-vit, the ViT organism: shipped like toyclip, loaded through open_clip, measured on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import sample_run
from typobench.models import load_model
from typobench.models.builtin import WEIGHTS_DIR, get_builtin_model

CARD = Path(__file__).resolve().parents[1] / "typobench" / "models" / "TOYCLIP_VIT_CARD.md"


def test_toyclip_vit_is_a_shipped_open_clip_vision_transformer():
    builtin = get_builtin_model("toyclip-vit")
    assert builtin is not None and builtin.weights == WEIGHTS_DIR / "toyclip-vit.safetensors"
    assert builtin.weights.stat().st_size < 20e6
    loaded = load_model("toyclip-vit")
    visual = loaded.model.visual
    assert not loaded.random_init and type(visual).__name__ == "VisionTransformer"
    assert visual.conv1.kernel_size == (8, 8) and len(visual.transformer.resblocks) == 4
    assert loaded.image_size == (64, 64)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert loaded.checkpoint_sha256 in CARD.read_text()  # the card names the weights it describes


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return sample_run("toyclip-vit", tmp_path_factory.mktemp("toyclip-vit"))


def test_shipped_vit_classifies_breaks_under_pgd_and_reads(default_run):
    # 300 bundled CIFAR-10 test images; the card's table (8,000 held-out test images) has the figures and the
    # thresholds. Measured on these 300: clean 71.7%, sticker 89.0%, written class 35.1%, control word 51.0%,
    # wrong label 38.0%, PGD 1.3%. The bounds sit inside those and away from the weights shipped before, which
    # read a little (on these images: clean 50.7%, sticker 55.0%, written class 14.9%).
    clean = default_run["clean"]["accuracy"]
    assert clean > 0.60  # chance is 0.10
    assert default_run["true-label-sticker"]["accuracy"] > clean + 0.10  # Fort's lift: it reads the true label
    assert default_run["random-wrong-label"]["targeted_success"]["value"] > 0.25
    # a word that is not a class costs less than a class name: reading, not covering
    assert default_run["control-word"]["accuracy"] > default_run["random-wrong-label"]["accuracy"] + 0.05
    assert default_run["pgd-linf-2"]["accuracy"] < 0.10


def test_shipped_vit_names_class_words_written_alone(tmp_path):
    # The card: 75.3% on 8,000 held-out test images (toyclip 77.6%); 77.7% on these 300 bundled ones.
    # Chance is 10%; the weights shipped before named 31.7% of them.
    words = sample_run("toyclip-vit", tmp_path, suite="words-alone")
    assert words["white"]["accuracy"] == pytest.approx(0.1, abs=0.02)  # one class for all: the stratified share
    assert words["words-alone"]["accuracy"] > 0.60
