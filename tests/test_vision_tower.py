"""Image-tower checkpoints (``--vision-tower``, FARE/TeCoA style) and the one-line account of a state dict that does
not fit, shared by ``--pretrained``: toyclip's own tower reproduces it exactly, another architecture's is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import typobench.api as tb
from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256
from typobench.harness.config import RunConfig
from typobench.models import load_model
from typobench.models.tower import describe_mismatch, read_state_dict, tower_state


@pytest.fixture(scope="module")
def toyclip():
    return load_model("toyclip")


def _visual_state(loaded, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().clone().contiguous() for k, v in loaded.model.visual.state_dict().items()}


def _images() -> torch.Tensor:
    return torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prefix", ["", "visual.", "module.visual.", "model."])
def test_own_tower_reproduces_the_model_exactly(toyclip, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "tower.safetensors"
    save_file(_visual_state(toyclip, prefix), str(path))
    swapped = load_model("toyclip", vision_tower=path)
    with torch.no_grad():
        assert torch.equal(swapped.model.encode_image(_images()), toyclip.model.encode_image(_images()))
    record = swapped.describe()
    assert record["vision_tower_sha256"] == file_sha256(path) and record["vision_tower"] == str(path)
    assert "vision_tower" not in toyclip.describe()  # records of models without a tower stay as they were


def test_pt_tower_nested_under_state_dict_loads_and_changes_the_fingerprint(toyclip, tmp_path: Path) -> None:
    state = _visual_state(toyclip)
    state["conv1.weight"] += 0.01  # a different tower: the weights' identity (cache and run keys) must change
    path = tmp_path / "tower.pt"
    torch.save({"state_dict": state, "epoch": torch.tensor(3)}, path)
    swapped = load_model("toyclip", vision_tower=path)
    assert torch.equal(swapped.model.visual.conv1.weight, state["conv1.weight"])
    assert swapped.fingerprint() != toyclip.fingerprint()
    # The text tower is untouched.
    assert torch.equal(swapped.model.token_embedding.weight, toyclip.model.token_embedding.weight)


def test_tower_of_another_architecture_is_one_line_naming_keys(tmp_path: Path) -> None:
    path = tmp_path / "vit.safetensors"
    save_file(_visual_state(load_model("tiny-vit"), "visual."), str(path))
    with pytest.raises(UsageError) as info:
        load_model("toyclip", vision_tower=path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "missing key 'bn1.weight'" in message and "unexpected key 'class_embedding'" in message


def test_tower_with_other_shapes_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "rn.safetensors"
    save_file(_visual_state(load_model("tiny-rn")), str(path))
    with pytest.raises(UsageError, match=r"key 'conv1.weight' has shape \[4, 3, 3, 3\] in the file but "
                                         r"\[16, 3, 3, 3\] in the model"):
        load_model("toyclip", vision_tower=path)


def test_cli_exits_2_with_one_line_for_a_foreign_tower(tmp_path: Path, capsys) -> None:
    path = tmp_path / "vit.safetensors"
    save_file(_visual_state(load_model("tiny-vit")), str(path))
    status = main(["run", "--vision-tower", str(path), "--suite", "none", "--limit", "2", "--quiet",
                   "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "missing key 'bn1.weight'" in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_full_checkpoint_of_another_architecture_names_keys_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "tiny-vit.pt"
    torch.save(load_model("tiny-vit").model.state_dict(), path)
    with pytest.raises(UsageError) as info:
        load_model("typobench-toyclip", pretrained=str(path))
    message = str(info.value)
    assert "\n" not in message and "Error(s) in loading" not in message
    assert "missing key 'visual.bn1.weight'" in message and "unexpected key 'visual.class_embedding'" in message
    assert "key 'positional_embedding' has shape [16, 32] in the file but [16, 128] in the model" in message


def test_non_tensor_entries_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    odd = tmp_path / "odd.pt"
    torch.save({"conv1.weight": torch.zeros(1), "note": "hello"}, odd)
    with pytest.raises(UsageError, match="non-tensor entry 'note'"):
        read_state_dict(odd, "--vision-tower")
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(UsageError, match="is not a readable checkpoint"):
        read_state_dict(text, "--vision-tower")
    with pytest.raises(UsageError, match="not found"):
        read_state_dict(tmp_path / "absent.pt", "--vision-tower")


def test_prefixes_and_mismatch_description() -> None:
    t = torch.zeros(2)
    full = {"module.visual.a": t, "module.transformer.b": t}
    assert list(tower_state(full)) == ["a"]  # a full CLIP state dict gives its image tower
    # A prefix on some keys only is part of their names, not a wrapper's.
    assert set(tower_state({"model.a": t, "b": t})) == {"model.a", "b"}
    assert describe_mismatch({"a": t}, {"a": t}) is None
    assert describe_mismatch({"a": t, "b": t}, {"c": t}) == "missing key 'a' (and 1 more), unexpected key 'c'"


def test_run_key_and_python_api_carry_the_tower(toyclip, tmp_path: Path) -> None:
    path = tmp_path / "tower.safetensors"
    save_file(_visual_state(toyclip), str(path))
    assert "vision_tower" not in RunConfig().semantic()  # keys of earlier runs stay what they were
    assert RunConfig(vision_tower=str(path)).semantic()["vision_tower"] == str(path)
    model = tb.load_model("toyclip", vision_tower=str(path), device="cpu")
    assert model.loaded.vision_tower_sha256 == file_sha256(path)
    data = tb.load_data("cifar10-sample", model, limit=2)
    assert tb.session(model, data).config.vision_tower == str(path)


def test_cli_run_records_the_tower_and_its_key_differs(toyclip, tmp_path: Path) -> None:
    path = tmp_path / "tower.safetensors"
    save_file(_visual_state(toyclip, "visual."), str(path))
    common = ["run", "--suite", "none", "--limit", "2", "--quiet", "--no-neurons"]
    assert main([*common, "--vision-tower", str(path), "--out", str(tmp_path / "with")]) == 0
    assert main([*common, "--out", str(tmp_path / "without")]) == 0
    with_tower = json.loads((tmp_path / "with" / "results.json").read_text())
    without = json.loads((tmp_path / "without" / "results.json").read_text())
    assert with_tower["model"]["vision_tower_sha256"] == file_sha256(path)
    assert with_tower["config"]["vision_tower"] == str(path) and "vision_tower" not in without["model"]
    assert with_tower["config_hash"] != without["config_hash"]
    # The same weights: the same scores.
    assert with_tower["stages"][0]["accuracy"] == without["stages"][0]["accuracy"]
