"""Reliability 3: every failure ends in exit 0, or in exit 2 with one line (never a traceback of ours),
under torchrun too; a resumed run computes with the thread count it started with."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from typobench.cli import main
from typobench.harness.results import read_predictions

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# Rank 1 starts late, as a slow node would: without the exit rendezvous, torchrun kills it by SIGTERM
# once rank 0 has exited with status 2.
LATE_RANK = "import os, sys, time\nif os.environ['RANK'] == '1':\n    time.sleep(4)\n" \
            "from typobench.cli import main\nsys.exit(main())\n"


@pytest.mark.parametrize("argv, needle", [
    (["run", "--limit", "0"], "--limit"),  # found by every rank before it joins the process group
    (["run", "--model", "tiny-rn", "--device", "cpu", "--holdout", "5000", "--limit", "16"], "--holdout"),  # after
])
def test_a_usage_error_under_torchrun_ends_every_rank_with_status_2(tmp_path, argv, needle):
    driver = tmp_path / "late_rank.py"
    driver.write_text(LATE_RANK)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TYPOBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([*TORCHRUN, str(driver), *argv, "--out", str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("typobench: error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr
    assert not (tmp_path / "run").exists()
    # torchrun's own failure report: one entry per rank with its exit code (a signal shows as -15).
    codes = re.findall(r"rank\s+: (\d) \(local_rank: \d\)\s+exitcode\s+: (-?\d+)", done.stderr)
    assert sorted(codes) == [("0", "2"), ("1", "2")], done.stderr
    assert "typobench/" not in "".join(line for line in done.stderr.splitlines() if line.startswith("  File"))
    assert done.returncode == 1  # torchrun's status when a child failed, whatever the child's


# -- in-process CLI runs ------------------------------------------------------------------------------

RUN = ["run", "--model", "tiny-rn", "--device", "cpu", "--quiet", "--batch-size", "8"]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TYPOBENCH_CACHE", str(folder))
    return folder


def _image_folder(root: Path, classes: tuple[str, ...], per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_a_holdout_larger_than_the_data_set_is_one_line_before_anything_is_created(tmp_path, cache, capsys):
    out = tmp_path / "run"
    code, err = _cli(capsys, *RUN, "--holdout", "5000", "--limit", "16", "--out", str(out))
    line = _one_line(err)
    assert code == 2 and "--holdout 5000" in line and "1000" in line and "Traceback" not in err
    assert not out.exists()


def test_a_one_class_folder_is_refused_naming_the_folder(tmp_path, cache, capsys):
    data = _image_folder(tmp_path / "cats", ("cat",))
    code, err = _cli(capsys, *RUN, "--dataset", "folder", "--data-root", str(data), "--suite", "none",
                     "--out", str(tmp_path / "run"))
    line = _one_line(err)
    assert code == 2 and str(data) in line and "at least 2 classes" in line and "zero-shot" in line
    assert not (tmp_path / "run").exists()


def test_a_limit_larger_than_the_data_set_says_how_many_images_are_used(tmp_path, cache, capsys, caplog):
    data = _image_folder(tmp_path / "pets", ("cat", "dog"))
    with caplog.at_level(logging.WARNING, logger="typobench"):
        code, _ = _cli(capsys, *RUN, "--dataset", "folder", "--data-root", str(data), "--suite", "none",
                       "--limit", "100000", "--out", str(tmp_path / "run"))
    assert code == 0
    notices = [r.getMessage() for r in caplog.records if "--limit 100000" in r.getMessage()]
    assert len(notices) == 1 and "has 8 images" in notices[0] and "\n" not in notices[0]
    assert len(read_predictions(tmp_path / "run")) == 8


def test_a_text_too_long_is_quoted_short_in_its_error(tmp_path, cache, capsys):
    text = "abcdefghij " * 64  # 704 characters
    suite = tmp_path / "long.toml"
    suite.write_text(f'name = "long"\n[[stage]]\nname = "long"\nkind = "text"\ntext = "{text}"\n')
    code, err = _cli(capsys, *RUN, "--limit", "8", "--suite", str(suite), "--out", str(tmp_path / "run"))
    line = _one_line(err)
    assert code == 2 and "does not fit" in line and "704 characters" in line
    assert repr(text[:40] + "…") in line and len(line) < 250


def _bad_checkpoints(folder: Path) -> dict[str, Path]:
    """A text file, random bytes named .bin and .safetensors, and a pickle that runs code when unpickled."""
    import pickle

    marker = folder / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    files = {"text": folder / "weights.txt", "random": folder / "weights.bin",
             "random-safetensors": folder / "weights.safetensors", "evil": folder / "evil.pt"}
    files["text"].write_text("these are not weights\n")
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    files["random-safetensors"].write_bytes(files["random"].read_bytes())
    files["evil"].write_bytes(pickle.dumps({"state_dict": Payload()}))
    return files


def test_a_file_that_is_no_checkpoint_is_named_with_what_is_expected(tmp_path):
    import torch
    from safetensors.torch import load_file

    from typobench.core.errors import UsageError
    from typobench.models.loading import ModelSpec, _unreadable_checkpoint

    for kind, path in _bad_checkpoints(tmp_path).items():
        with pytest.raises(UsageError) as caught, _unreadable_checkpoint(ModelSpec("RN50", str(path)), path):
            load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)
        message = str(caught.value)
        assert str(path) in message and "expected a .safetensors file or a PyTorch state dict" in message, message
        assert "KeyError" not in message and "\n" not in message
        assert "weights_only` set to `False" not in message and "weights_only=False" not in message
        assert kind != "evil" or "never unpickles" in message, message
    assert not (tmp_path / "pwned").exists()


def test_a_malicious_pickle_is_one_line_that_never_suggests_unpickling_it(tmp_path, cache, capsys):
    evil = _bad_checkpoints(tmp_path)["evil"]
    code, err = _cli(capsys, "run", "--model", "RN50", "--pretrained", str(evil), "--suite", "none", "--limit", "2",
                     "--device", "cpu", "--quiet", "--out", str(tmp_path / "run"))
    line = _one_line(err)  # torch's warning about the pickle protocol is not printed either
    assert code == 2 and str(evil) in line and "never unpickles" in line and "False" not in line
    assert not (tmp_path / "pwned").exists()


# -- a resumed run computes with the thread count it started with --------------------------------------

# toyclip's predictions differ in the last bits between 1 and 2 intra-op threads (tiny-rn's do not).
THREADS_RUN = ["run", "--model", "toyclip", "--suite", "none", "--limit", "64", "--batch-size", "16",
               "--device", "cpu", "--quiet", "--checkpoint-every", "0"]


@pytest.fixture()
def threads():
    """Restores the process's thread count, which these tests (and the runs they resume) change."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _interrupted_after(monkeypatch, batches: int) -> None:
    """The run stops (as by Ctrl-C) when it starts batch number ``batches``: those before it are saved."""
    from typobench.harness import evaluation

    real, calls = evaluation.run_stages_on_batch, []

    def stop_later(*args, **kwargs):
        calls.append(1)
        if len(calls) > batches:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "run_stages_on_batch", stop_later)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_a_run_resumed_with_another_thread_count_gives_the_uninterrupted_predictions(
        tmp_path, cache, capsys, caplog, monkeypatch, threads, first, then):
    import json

    threads(first)
    assert main([*THREADS_RUN, "--out", str(tmp_path / "whole")]) == 0
    with monkeypatch.context() as patch:
        _interrupted_after(patch, 2)
        assert main([*THREADS_RUN, "--out", str(tmp_path / "resumed")]) == 130
    assert len(list((tmp_path / "resumed" / ".partial").glob("part-*.csv"))) == 2
    threads(then)
    with caplog.at_level(logging.WARNING, logger="typobench"):
        assert main([*THREADS_RUN, "--out", str(tmp_path / "resumed")]) == 0
    notices = [r.getMessage() for r in caplog.records if "intra-op threads" in r.getMessage()]
    assert len(notices) == 1 and f"{then} -> {first}" in notices[0], notices
    whole, resumed = (tmp_path / name / "predictions.csv" for name in ("whole", "resumed"))
    assert resumed.read_bytes() == whole.read_bytes()
    compute = json.loads((tmp_path / "resumed" / "results.json").read_text())["config"]["compute"]
    assert compute == {"threads": first, "precision": "fp32", "deterministic": False}
