"""One evaluation spread over processes with torchrun (gloo on CPU): the same numbers as one process.

Each test starts real processes the way a user does: ``torchrun --nproc-per-node N -m typobench ...``
(``python -m torch.distributed.run`` is torchrun), and compares the files with a one-process run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
RUN = ["run", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--limit", "48", "--batch-size", "8",
       "--device", "cpu", "--quiet"]


def _env(cache: Path, **extra: str) -> dict[str, str]:
    # One thread per process: two processes share this machine's two cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "TYPOBENCH_CACHE": str(cache), **extra}


def _single(argv: list[str], cache: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "typobench", *argv], env=_env(cache), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def _torchrun(nproc: int, argv: list[str], cache: Path, *launcher: str) -> subprocess.CompletedProcess:
    command = [*TORCHRUN, *(launcher or ("--standalone",)), "--nproc-per-node", str(nproc), "-m", "typobench", *argv]
    return subprocess.run(command, env=_env(cache), capture_output=True, text=True, timeout=600)


def _same_results(a: Path, b: Path) -> None:
    assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
    first, second = (json.loads((p / "results.json").read_text()) for p in (a, b))
    assert first["stages"] == second["stages"] and first["config_hash"] == second["config_hash"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The default suite on 48 bundled images in one process."""
    folder = tmp_path_factory.mktemp("one-process")
    _single([*RUN, "--out", str(folder / "run")], folder / "cache")
    return folder / "run"


def test_two_processes_give_the_results_of_one(tmp_path, reference):
    done = _torchrun(2, [*RUN, "--out", str(tmp_path / "run")], tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-2000:]
    _same_results(reference, tmp_path / "run")
    spread = json.loads((tmp_path / "run" / "results.json").read_text())["spread"]
    assert spread == {"world_size": 2, "attempts": [{"world_size": 2, "samples_per_rank": [24, 24]}]}
    assert done.stdout.count("results ") == 1  # rank 0 alone prints


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_on_one_machine_give_the_results_of_one(tmp_path, reference):
    """Two torchrun launches, one per 'node', meeting at a localhost rendezvous (as on two machines)."""
    endpoint = f"127.0.0.1:{_free_port()}"
    launcher = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", uuid.uuid4().hex]
    command = [*TORCHRUN, *launcher, "--nproc-per-node", "1", "-m", "typobench", *RUN, "--out", str(tmp_path / "run")]
    nodes = [subprocess.Popen(command, env=_env(tmp_path / "cache"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-1500:] for _, err in outputs]
    _same_results(reference, tmp_path / "run")


def _worker_pids(tag: str, rank: int) -> list[int]:
    """Processes whose environment carries this test's tag and the given RANK (torchrun's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TYPOBENCH_TEST_TAG={tag}".encode() in environ and f"RANK={rank}".encode() in environ:
            found.append(int(entry.name))
    return found


def test_kill_9_of_one_rank_then_resume_with_another_process_count(tmp_path, reference):
    out = tmp_path / "run"
    tag = uuid.uuid4().hex
    command = [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "typobench", *RUN, "--checkpoint-every", "0",
               "--out", str(out)]
    job = subprocess.Popen(command, env=_env(tmp_path / "cache", TYPOBENCH_TEST_TAG=tag),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((out / ".partial").glob("part-*.csv")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _worker_pids(tag, rank=1)
    assert victims, "rank 1 not found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert job.wait(timeout=300) != 0  # the job ends with the rank's failure, it does not hang
    assert not (out / "results.json").exists()
    done = _torchrun(3, [*RUN, "--out", str(out)], tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-2000:]
    _same_results(reference, out)
    attempts = json.loads((out / "results.json").read_text())["spread"]["attempts"]
    assert [a["world_size"] for a in attempts] == [2, 3]
    assert sum(sum(a["samples_per_rank"]) for a in attempts) == 48  # no sample evaluated twice


def _colour_folder(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    colours = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
    for split in ("train", "test"):
        for name, rgb in colours.items():
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = np.array(rgb, dtype=float) + rng.normal(0, 30, size=(40, 40, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / split / name / f"{i:02d}.png")
    return root


def test_a_linear_probe_run_and_a_sweep_under_two_processes_match_one(tmp_path):
    data = _colour_folder(tmp_path / "colours")
    probe = ["run", "--model", "tiny-rn", "--dataset", "folder", "--data-root", str(data), "--head", "linear-probe",
             "--suite", "random-wrong-label", "--batch-size", "8", "--device", "cpu", "--quiet"]
    sweep = ["sweep", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--limit", "24", "--batch-size", "8",
             "--suite", "random-wrong-label", "--vary", "text.size=8,12", "--no-plots", "--device", "cpu", "--quiet"]
    for name, argv in (("probe", probe), ("sweep", sweep)):
        _single([*argv, "--out", str(tmp_path / f"{name}-1")], tmp_path / "cache-1")
        done = _torchrun(2, [*argv, "--out", str(tmp_path / f"{name}-2")], tmp_path / "cache-2")
        assert done.returncode == 0, done.stderr[-2000:]
    _same_results(tmp_path / "probe-1", tmp_path / "probe-2")
    one, two = (pd.read_csv(tmp_path / f"sweep-{n}" / "sweep.csv") for n in (1, 2))
    pd.testing.assert_frame_equal(one, two)
    for point in (tmp_path / "sweep-1" / "points").iterdir():
        _same_results(point, tmp_path / "sweep-2" / "points" / point.name)


def test_a_bad_argument_is_one_line_once_and_status_2_on_every_rank(tmp_path):
    done = _torchrun(2, ["run", "--model", "tiny-rn", "--suite", "no-such-suite", "--device", "cpu"], tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("typobench: error:")]
    assert len(errors) == 1 and "no-such-suite" in errors[0]
    assert done.returncode != 0


def test_the_world_comes_from_torchrun_then_slurm_then_one_process():
    from typobench.harness.world import World

    assert World.from_env({}) == World(0, 1, 0)
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1"}
    assert World.from_env(slurm) == World(5, 8, 1)
    assert World.from_env({**slurm, "RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}) == World(2, 4, 0)
    assert World(1, 3).shard(list(range(10))) == [1, 4, 7]
    assert World(0, 1).shard([3, 4]) == [3, 4]


def test_features_spread_over_ranks_come_back_in_plan_order():
    import torch

    from typobench.heads.features import _in_plan_order

    plan = [[0, 1, 2], [3, 4, 5], [6, 7], ]
    rows = torch.arange(8.0).view(8, 1)
    per_rank = [torch.cat([rows[0:3], rows[6:8]]), rows[3:6]]  # rank 0: batches 0 and 2; rank 1: batch 1
    assert torch.equal(_in_plan_order(per_rank, plan, 2), rows)


CASCADE_SUITE = """name = "cascade"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "worst-case"
kind = "worst-case"
[[stage.attack]]
name = "apgd-ce"
kind = "apgd"
eps = "4/255"
steps = 3
[[stage.attack]]
name = "apgd-t"
kind = "apgd"
eps = "4/255"
steps = 2
target = "top-k"
target_classes = 2
[[stage.attack]]
name = "square"
kind = "square"
eps = "4/255"
queries = 10
"""


def test_a_worst_case_cascade_under_two_processes_gives_the_per_sample_results_of_one(tmp_path):
    suite = tmp_path / "cascade.toml"
    suite.write_text(CASCADE_SUITE)
    argv = [*RUN, "--limit", "24", "--suite", str(suite), "--attack-checks", "0"]
    _single([*argv, "--out", str(tmp_path / "one")], tmp_path / "cache")
    done = _torchrun(2, [*argv, "--out", str(tmp_path / "two")], tmp_path / "cache-2")
    assert done.returncode == 0, done.stderr[-2000:]
    _same_results(tmp_path / "one", tmp_path / "two")
    table = pd.read_csv(tmp_path / "one" / "predictions.csv")
    assert set(table.loc[table["stage"] == "worst-case", "broken_by"].fillna("")) <= {"clean", "apgd-ce", "apgd-t",
                                                                                      "square", ""}


# -- resumed across thread counts and world sizes ---------------------------------------------------

# toyclip's predictions differ in the last bits between 1 and 2 intra-op threads (tiny-rn's do not).
THREADS_RUN = ["run", "--model", "toyclip", "--dataset", "cifar10-sample", "--suite", "none", "--limit", "64",
               "--batch-size", "8", "--device", "cpu", "--quiet", "--checkpoint-every", "0"]


def _plain(argv: list[str], cache: Path, threads: int, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "typobench", *argv], env=_env(cache, OMP_NUM_THREADS=str(threads),
                            **extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _launched(argv: list[str], cache: Path, **extra: str) -> subprocess.Popen:
    command = [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "typobench", *argv]
    return subprocess.Popen(command, env=_env(cache, **extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _kill_after_first_batch(job: subprocess.Popen, out: Path, tag: str) -> None:
    """SIGKILL every process of the job (as an OOM killer or a lost node does) once one batch is saved."""
    deadline = time.monotonic() + 300
    while not list((out / ".partial").glob("part-*.csv")) and time.monotonic() < deadline:
        assert job.poll() is None, job.stderr.read()[-2000:]
        time.sleep(0.02)
    for pid in [*_worker_pids(tag, rank=0), *_worker_pids(tag, rank=1), job.pid]:
        os.kill(pid, signal.SIGKILL)
    job.wait(timeout=60)
    assert not (out / "results.json").exists()


@pytest.fixture(scope="module")
def by_threads(tmp_path_factory) -> dict[int, Path]:
    """Uninterrupted one-process runs at 1 and at 2 intra-op threads."""
    folder = tmp_path_factory.mktemp("threads")
    runs = {}
    for threads in (1, 2):
        job = _plain([*THREADS_RUN, "--out", str(folder / f"t{threads}")], folder / "cache", threads)
        assert job.wait(timeout=600) == 0, job.stderr.read()[-2000:]
        runs[threads] = folder / f"t{threads}"
    return runs


def test_the_thread_count_changes_toyclips_predictions(by_threads):
    """Without this, the resume tests below could not fail."""
    one, two = ((by_threads[t] / "predictions.csv").read_bytes() for t in (1, 2))
    assert one != two


@pytest.mark.parametrize("start", ["plain", "torchrun"])
def test_a_run_killed_at_one_thread_count_resumes_at_another_world_size_identically(tmp_path, by_threads, start):
    """Started as one process on 2 threads and resumed by torchrun (2 ranks, OMP_NUM_THREADS=1), or the reverse:
    every resumed batch is computed with the thread count the run started with."""
    out, tag, cache = tmp_path / "run", uuid.uuid4().hex, tmp_path / "cache"
    argv = [*THREADS_RUN, "--out", str(out)]
    first = _plain(argv, cache, 2, TYPOBENCH_TEST_TAG=tag) if start == "plain" else _launched(
        argv, cache, TYPOBENCH_TEST_TAG=tag)
    _kill_after_first_batch(first, out, tag)
    then = _launched(argv, cache) if start == "plain" else _plain(argv, cache, 2)
    assert then.wait(timeout=600) == 0, then.stderr.read()[-2000:]
    started_with = 2 if start == "plain" else 1
    assert (out / "predictions.csv").read_bytes() == (by_threads[started_with] / "predictions.csv").read_bytes()
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["compute"]["threads"] == started_with
    assert [a["world_size"] for a in results["spread"]["attempts"]] == ([1, 2] if start == "plain" else [2, 1])
