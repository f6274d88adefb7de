"""Reliability 3: every failure ends in exit 0, or in exit 2 with one line (never a traceback of ours),
under torchrun too; a resumed run computes with the thread count it started with."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# Rank 1 starts late, as a slow node would: without the exit rendezvous, torchrun kills it by SIGTERM
# once rank 0 has exited with status 2.
LATE_RANK = "import os, sys, time\nif os.environ['RANK'] == '1':\n    time.sleep(4)\n" \
            "from typobench.cli import main\nsys.exit(main())\n"


def test_a_usage_error_under_torchrun_ends_every_rank_with_status_2(tmp_path):
    driver = tmp_path / "late_rank.py"
    driver.write_text(LATE_RANK)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TYPOBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([*TORCHRUN, str(driver), "run", "--limit", "0"], env=env, capture_output=True,
                          text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("typobench: error:")]
    assert len(errors) == 1 and "--limit" in errors[0], done.stderr
    # torchrun's own failure report: one entry per rank with its exit code (a signal shows as -15).
    codes = re.findall(r"rank\s+: (\d) \(local_rank: \d\)\s+exitcode\s+: (-?\d+)", done.stderr)
    assert sorted(codes) == [("0", "2"), ("1", "2")], done.stderr
    assert "typobench/" not in "".join(line for line in done.stderr.splitlines() if line.startswith("  File"))
    assert done.returncode == 1  # torchrun's status when a child failed, whatever the child's
