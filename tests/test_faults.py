"""Fault injection: concurrent runs, damaged state, failed starts, full and read-only disks, kills.

Every case ends in one of two ways: the same numbers as an undisturbed run, or one line on stderr and a
non-zero exit status -- never a result from incomplete data, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from typobench.cli import main
from typobench.core.cache import TensorCache
from typobench.harness.lock import OWNER_FILE, output_lock
from typobench.harness.results import read_predictions

RUN = ["run", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--limit", "32", "--batch-size", "8",
       "--device", "cpu", "--quiet"]


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


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """Predictions of the undisturbed run every fault is compared with."""
    folder = tmp_path_factory.mktemp("reference")
    assert main([*RUN, "--out", str(folder / "run"), "--cache-dir", str(folder / "cache")]) == 0
    return read_predictions(folder / "run")


def _same(out: Path, reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(read_predictions(out), reference)


def _interrupt_before_results(monkeypatch) -> None:
    """Leave a run with every batch finished on disk but no results (as a kill just before writing)."""
    def stop(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("typobench.harness.run.check_complete", stop)


# -- 1. two runs into one folder --------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tmp_path, cache, capsys):
    out = tmp_path / "run"
    with output_lock(out):
        code, err = _cli(capsys, *RUN, "--out", str(out))
    assert code == 2
    line = _one_line(err)
    assert str(out) in line and f"process {os.getpid()}" in line
    assert not (out / "results.json").exists()


def test_concurrent_runs_give_one_complete_result(tmp_path, cache):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "typobench", *RUN, "--limit", "64", "--out", str(out)]
    procs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    # Either the second waited out the first (then read its finished run back) or was refused in one line.
    assert codes in ([0, 0], [0, 2]), outcomes
    results = json.loads((out / "results.json").read_text())
    assert all(stage["n"] == 64 for stage in results["stages"])
    assert len(read_predictions(out)) == 64 * len(results["stages"])


def test_a_killed_holder_does_not_block_the_folder(tmp_path, cache, capsys, reference):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from typobench.harness.lock import output_lock\n"
                               f"with output_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert _cli(capsys, *RUN, "--out", str(out))[0] == 2
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (out / OWNER_FILE).exists()  # what a killed run leaves behind ...
    assert _cli(capsys, *RUN, "--out", str(out))[0] == 0  # ... does not block
    _same(out, reference)


# -- 2. damaged finished batches --------------------------------------------------------------------


def _delete_a_row(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[4:]))


def _cut_mid_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 7])


def _cut_at_line_boundary(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))


@pytest.mark.parametrize("damage", [_delete_a_row, _cut_mid_line, _cut_at_line_boundary])
def test_damaged_finished_batches_are_recomputed(tmp_path, cache, capsys, monkeypatch, caplog, reference, damage):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_before_results(patch)
        assert _cli(capsys, *RUN, "--out", str(out))[0] == 130
    parts = sorted((out / ".partial").glob("part-*.csv"))
    assert parts
    damage(parts[0])
    with caplog.at_level(logging.WARNING, logger="typobench"):
        assert _cli(capsys, *RUN, "--out", str(out))[0] == 0
    assert any("damaged" in r.getMessage() and parts[0].name in r.getMessage() for r in caplog.records)
    _same(out, reference)
    assert not (out / ".partial").exists()


def test_results_are_never_written_from_incomplete_batches(tmp_path, cache, capsys, monkeypatch):
    """The last line of defence: if the batches read back miss a sample, the run fails loudly."""
    out = tmp_path / "run"
    from typobench.harness import evaluation

    real = evaluation.predict_stages

    def predict_stages_minus_one_row(*args, **kwargs):
        return real(*args, **kwargs).iloc[1:]

    monkeypatch.setattr("typobench.harness.session.predict_stages", predict_stages_minus_one_row)
    code, err = _cli(capsys, *RUN, "--out", str(out))
    assert code == 1
    assert "1 of 32 samples missing" in _one_line(err) and not (out / "results.json").exists()


# -- 3. damaged cache entries -----------------------------------------------------------------------


def test_a_truncated_or_altered_cache_entry_is_rebuilt(tmp_path, caplog):
    cache = TensorCache(tmp_path)
    tensors = {"features": torch.arange(12.0).view(3, 4), "labels": torch.tensor([0, 1, 2])}
    for damage in ("truncate", "alter"):
        cache.save("features", "k", tensors)
        path = cache.path("features", "k")
        data = bytearray(path.read_bytes())
        path.write_bytes(bytes(data[: len(data) - 9]) if damage == "truncate" else bytes(data[:-1] + b"\x7f"))
        with caplog.at_level(logging.WARNING, logger="typobench"):
            assert cache.load("features", "k") is None
        assert not path.exists() and "damaged" in caplog.records[-1].getMessage()
    cache.save("features", "k", tensors)
    assert torch.equal(cache.load("features", "k")["features"], tensors["features"])


def test_a_damaged_zeroshot_cache_entry_is_rebuilt_by_the_next_run(tmp_path, cache, capsys, reference):
    assert _cli(capsys, *RUN, "--out", str(tmp_path / "first"))[0] == 0
    (entry,) = (cache / "zeroshot").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])
    assert _cli(capsys, *RUN, "--out", str(tmp_path / "second"))[0] == 0
    _same(tmp_path / "second", reference)
    assert TensorCache(cache).load("zeroshot", entry.stem) is not None  # rebuilt whole


# -- 4. a failed start does not block the fix ---------------------------------------------------------


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_after_a_failed_start_the_fixed_input_runs(tmp_path, cache, capsys):
    data = _image_folder(tmp_path / "images")
    (data / "dog" / "bad.png").write_bytes(b"not an image")
    argv = ["run", "--model", "tiny-rn", "--dataset", "folder", "--data-root", str(data), "--suite",
            "random-wrong-label", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run")]
    code, err = _cli(capsys, *argv)
    assert code == 2 and "bad.png" in _one_line(err)
    (data / "dog" / "bad.png").unlink()
    assert _cli(capsys, *argv)[0] == 0


# -- 5. environment errors and bad files: one line ----------------------------------------------------


def test_out_naming_a_file_is_one_line(tmp_path, cache, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, err = _cli(capsys, *RUN, "--out", str(target))
    assert code == 2 and "is a file" in _one_line(err)


@contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot mount a tmpfs for the disk test: {done.stderr.decode().strip()}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_back(tmp_path, cache, capsys, reference):
    with _tmpfs(tmp_path / "small", "size=48k") as disk:
        out = disk / "run"
        code, err = _cli(capsys, *RUN, "--out", str(out), "--checkpoint-every", "0")
        assert code == 1
        line = _one_line(err)
        assert "No space left on device" in line and str(disk) in line and "resume" in line
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        assert _cli(capsys, *RUN, "--out", str(out))[0] == 0
        _same(out, reference)


def test_a_read_only_out_is_one_line(tmp_path, cache, capsys):
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as disk:
        code, err = _cli(capsys, *RUN, "--out", str(disk / "run"))
    assert code == 1 and "Read-only file system" in _one_line(err)


def test_bad_checkpoints_are_one_line_and_never_unpickled(tmp_path, cache, capsys):
    text = tmp_path / "weights.pt"
    text.write_text("these are not weights")
    evil = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    evil.write_bytes(_malicious_pickle(marker))
    for checkpoint in (text, evil):
        code, err = _cli(capsys, "run", "--model", "RN50", "--pretrained", str(checkpoint), "--suite", "none",
                         "--limit", "2", "--device", "cpu", "--quiet", "--out", str(tmp_path / "run"))
        assert code == 2 and str(checkpoint) in [line for line in err.splitlines() if "error" in line][0]
    assert not marker.exists()


def _malicious_pickle(marker: Path) -> bytes:
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"state_dict": Payload()})


def test_neurons_from_a_broken_run_folder_is_one_line(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text("{not json")
    (folder / "predictions.csv").write_text("")
    code, err = _cli(capsys, "neurons", "--from", str(folder), "--quiet")
    assert code == 2 and "results.json" in _one_line(err)
    (folder / "results.json").write_text("{}")
    code, err = _cli(capsys, "neurons", "--from", str(folder), "--quiet")
    assert code == 2 and str(folder) in _one_line(err)


# -- 6. nothing silently wrong ---------------------------------------------------------------------------


def test_a_builtin_model_refuses_pretrained(tmp_path, cache, capsys):
    code, err = _cli(capsys, *RUN, "--pretrained", "missing.pt", "--out", str(tmp_path / "run"))
    assert code == 2 and "--pretrained" in _one_line(err)


def test_text_too_long_for_the_image_is_shrunk_and_recorded(tmp_path, cache, capsys):
    suite = tmp_path / "long.toml"
    suite.write_text('name = "long"\n[[stage]]\nname = "long"\nkind = "text"\n'
                     'text = "supercalifragilisticexpialidocious"\n[stage.style]\nsize = 0.3\n')
    assert _cli(capsys, *RUN, "--suite", str(suite), "--out", str(tmp_path / "run"))[0] == 0
    rows = read_predictions(tmp_path / "run")
    rows = rows[rows.stage == "long"]
    assert (rows["text"] == "supercalifragilisticexpialidocious").all()
    assert (rows["size_px"].astype(float) < rows["size_requested_px"].astype(float)).all()
    mask_rows = json.loads(rows["placement"].iloc[0])
    assert mask_rows  # placed, and (shrunk) inside the image


def test_neurons_of_a_clean_only_run_says_there_is_nothing_to_blame(tmp_path, cache, capsys):
    out = tmp_path / "run"
    assert _cli(capsys, *RUN, "--suite", "none", "--out", str(out))[0] == 0
    code, err = _cli(capsys, "neurons", "--from", str(out), "--quiet")
    assert code == 2 and "no attack stage" in _one_line(err)


# -- 7. one line, exit 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, needle", [
    (["run", "--limit", "0"], "--limit"),
    (["run", "--precision", "fp8"], "fp8"),
    (["frobnicate"], "frobnicate"),
])
def test_argument_errors_are_one_line(capsys, argv, needle):
    code, err = _cli(capsys, *argv)
    assert code == 2 and needle in _one_line(err) and "usage:" not in err


def test_an_empty_text_names_the_suite_and_the_stage(tmp_path, cache, capsys):
    suite = tmp_path / "empty.toml"
    suite.write_text('name = "blank-words"\n[[stage]]\nname = "empty-word"\nkind = "text"\n'
                     'words = "word-list"\nword_list = ["ok", " "]\n')
    code, err = _cli(capsys, *RUN, "--suite", str(suite), "--out", str(tmp_path / "run"))
    line = _one_line(err)
    assert code == 2 and "blank-words" in line and "empty-word" in line
    assert not (tmp_path / "run" / ".partial").exists()  # refused before any state was created


# -- 8. temporary files and kills --------------------------------------------------------------------------


def test_orphan_temporary_files_are_cleaned_on_the_next_start(tmp_path, cache, capsys):
    out = tmp_path / "run"
    out.mkdir()
    orphan = out / ".examples.png.abc123.tmp"
    orphan.write_bytes(b"half a picture")
    assert _cli(capsys, *RUN, "--out", str(out))[0] == 0
    assert not orphan.exists() and not list(out.glob(".*.tmp"))


def test_kill_9_at_five_moments_then_resume_gives_identical_results(tmp_path, cache, reference):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "typobench", *RUN, "--checkpoint-every", "0", "--out", str(out)]
    rng = np.random.default_rng(7)
    for delay in sorted(rng.uniform(2.0, 9.0, size=5)):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert subprocess.run(argv, capture_output=True).returncode == 0
    _same(out, reference)
