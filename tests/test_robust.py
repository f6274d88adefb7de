"""Robust fine-tuning (FARE, TeCoA) of an organism's image tower, and the shipped robust organisms."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import sample_run
from typobench.models import load_model
from typobench.models.builtin import get_builtin_model
from typobench.toyclip.robust_loss import (TrainPhotos, fare_attack, fare_loss, split_indices, tecoa_loss,
                                           zero_shot_logits)

CARDS = Path(__file__).resolve().parents[1] / "typobench" / "models"


# -- the losses, on hand-made cases -----------------------------------------------------------------------------


def test_fare_loss_is_the_squared_l2_distance_to_the_original_embedding_averaged_over_images():
    embedding = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    original = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # ||(3,4)||^2 = 25 and ||(0,1)||^2 = 1: mean 13. Unnormalised: scaling the embedding changes the loss.
    assert fare_loss(embedding, original).item() == pytest.approx(13.0)
    assert fare_loss(original, original).item() == 0.0
    assert fare_loss(2 * embedding, original).item() != pytest.approx(13.0)


def test_tecoa_loss_is_the_cross_entropy_of_the_zero_shot_logits():
    class_text = torch.eye(2)  # [D=2, K=2] unit class embeddings
    embedding = torch.tensor([[5.0, 0.0], [0.0, 0.3]])  # normalised to (1, 0) and (0, 1)
    labels = torch.tensor([0, 0])
    logits = zero_shot_logits(embedding, class_text, scale=2.0)
    assert logits.tolist() == [[2.0, 0.0], [0.0, 2.0]]
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(2.0))) / 2
    assert tecoa_loss(embedding, class_text, labels, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_the_fare_attack_stays_in_the_ball_and_raises_the_distance():
    torch.manual_seed(0)
    weight = torch.randn(4, 3 * 8 * 8)

    def encode(x):
        return x.flatten(1) @ weight.t()

    x0 = torch.rand(5, 3, 8, 8)
    original = encode(x0)
    eps = 2 / 255
    adv = fare_attack(encode, x0, original, eps, eps / 2, 3, torch.Generator().manual_seed(0))
    assert (adv - x0).abs().max().item() <= eps + 1e-7 and adv.min() >= 0 and adv.max() <= 1
    start = fare_attack(encode, x0, original, eps, eps / 2, 0, torch.Generator().manual_seed(0))
    assert fare_loss(encode(adv), original) > 2 * fare_loss(encode(start), original)


def test_split_and_batches_are_fixed_by_their_seeds():
    train, val = split_indices(100, 20, seed=0)
    assert len(val) == 20 and not set(train) & set(val) and len(train) + len(val) == 100
    photos = TrainPhotos(torch.randint(0, 255, (30, 64, 64, 3), dtype=torch.uint8).numpy(), list(range(30)), seed=1)
    a, b = photos.batch(3, 8), photos.batch(3, 8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].shape == (8, 3, 64, 64)
    assert not torch.equal(a[0], photos.batch(4, 8)[0])


# -- the training script, on the tiny model -----------------------------------------------------------------------


def _train(root: Path, out: Path, loss: str, *extra: str) -> dict:
    from typobench.toyclip.robust import build_parser, train

    args = build_parser().parse_args(["--loss", loss, "--base", "tiny-rn", "--data-root", str(root), "--out", str(out),
                                      "--steps", "4", "--batch-size", "6", "--photo-limit", "40", "--validation", "10",
                                      "--eval-images", "4", "--attack-steps", "2", "--log-every", "2", "--fp32",
                                      *extra])
    return train(args)


@pytest.mark.parametrize("loss", ["fare", "tecoa"])
def test_training_changes_only_the_image_tower_and_resumes_bit_identically(cifar10_jpeg_root, tmp_path, loss):
    whole = _train(cifar10_jpeg_root, tmp_path / "whole", loss)
    stopped = _train(cifar10_jpeg_root, tmp_path / "parts", loss, "--stop-after", "2")
    assert stopped["stopped_at"] == 2 and not (tmp_path / "parts" / f"tiny-rn-{loss}.safetensors").exists()
    resumed = _train(cifar10_jpeg_root, tmp_path / "parts", loss)
    assert resumed["tensors_sha256"] == whole["tensors_sha256"]
    trained = load_file(str(tmp_path / "whole" / f"tiny-rn-{loss}.safetensors"))
    base = load_model("tiny-rn").model.state_dict()
    changed = {k for k, v in trained.items() if not torch.equal(v, base[k])}
    assert changed and all(k.startswith("visual.") for k in changed)
    # BatchNorm statistics stay frozen (eval mode): only the learnt parameters of the tower move.
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert "logit_scale" not in changed
    tower = load_file(str(tmp_path / "whole" / f"tiny-rn-{loss}-visual.safetensors"))
    assert all(torch.equal(v, trained[f"visual.{k}"]) for k, v in tower.items())
    with pytest.raises(Exception, match="another recipe"):
        _train(cifar10_jpeg_root, tmp_path / "parts", loss, "--stop-after", "3", "--lr", "0.5")


@pytest.mark.parametrize("argv, message", [
    (["--loss", "pgd", "--out", "x"], "invalid choice"),
    (["--loss", "fare", "--out", "x", "--eps", "two"], "not a number"),
    (["--loss", "fare", "--out", "x", "--steps", "0"], "--steps: must be a positive integer, got 0"),
    (["--loss", "fare", "--out", "x", "--eps", "2"], "must lie in (0, 1)"),
    (["--loss", "fare", "--out", "x", "--data-root", "/nonexistent"], "cifar10-jpeg folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    from typobench.toyclip.robust import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


# -- the shipped robust organisms ---------------------------------------------------------------------------------

SHIPPED = [name for name in ("toyclip-fare", "toyclip-tecoa") if get_builtin_model(name) is not None]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_robust_organism_is_toyclip_with_only_its_image_tower_changed(name):
    builtin = get_builtin_model(name)
    assert builtin.weights.is_file() and builtin.weights.stat().st_size < 30e6
    loaded, toyclip = load_model(name), load_model("toyclip")
    assert not loaded.random_init and loaded.image_size == (64, 64)
    robust, base = loaded.model.state_dict(), toyclip.model.state_dict()
    assert robust.keys() == base.keys()
    changed = {k for k in robust if not torch.equal(robust[k], base[k])}
    assert changed and all(k.startswith("visual.") for k in changed)
    card = (CARDS / f"{name.upper().replace('-', '_')}_CARD.md").read_text()
    assert loaded.checkpoint_sha256 in card  # the card names the weights it describes


@pytest.mark.parametrize("name", SHIPPED)
def test_a_robust_organism_resists_pgd_where_toyclip_breaks_on_the_sample(tmp_path, name):
    # 300 bundled CIFAR-10 test images (toyclip: clean 69.0%, PGD 2/255 3.3%). The cards, on 500 held-out cifar10-jpeg
    # test images: toyclip-fare clean 68.0%, PGD-10 35.0%; toyclip-tecoa 61.0%, 26.2%. The thresholds sit well below.
    run = sample_run(name, tmp_path)
    assert run["clean"]["accuracy"] > 0.45  # chance is 0.10
    assert run["pgd-linf-2"]["accuracy"] > 0.15


def test_a_vision_tower_saved_from_toyclip_fare_makes_toyclip_predict_exactly_as_toyclip_fare(tmp_path):
    if "toyclip-fare" not in SHIPPED:
        pytest.skip("toyclip-fare is not shipped")
    from typobench.cli import main
    from typobench.harness.results import read_predictions
    from typobench.toyclip.robust import save_vision_tower

    tower = tmp_path / "FARE_VISUAL.safetensors"
    save_vision_tower(load_model("toyclip-fare").model, tower)
    fare, swapped = load_model("toyclip-fare"), load_model("toyclip", vision_tower=tower)
    images = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fare.model.encode_image(images), swapped.model.encode_image(images))
    common = ["--dataset", "cifar10-sample", "--limit", "100", "--suite", "none", "--device", "cpu",
              "--cache-dir", str(tmp_path / "cache")]
    assert main(["run", "--model", "toyclip-fare", "--out", str(tmp_path / "fare"), *common]) == 0
    assert main(["run", "--model", "toyclip", "--vision-tower", str(tower), "--out", str(tmp_path / "tower"),
                 *common]) == 0
    a, b = read_predictions(tmp_path / "fare"), read_predictions(tmp_path / "tower")
    assert len(a) == 100 and a["sample_id"].tolist() == b["sample_id"].tolist()
    assert a["pred"].tolist() == b["pred"].tolist()
