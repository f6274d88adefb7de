"""The processes one evaluation is spread over: PyTorch's own launcher (``torchrun``) or SLURM's ``srun``.

typobench never schedules anything itself. ``torchrun --nproc-per-node N -m typobench run ...`` starts N
processes with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set (``srun`` sets ``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID``, read when torchrun's are absent); each process opens the same session, evaluates its
share of the batches, and rank 0 writes the results. With no such variables there is one process and
every collective below is a no-op.

Collectives carry bytes in tensors (no pickling) and time out (``TYPOBENCH_DIST_TIMEOUT`` seconds, 30
minutes by default): a rank that died ends the job instead of hanging it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from typobench.core.errors import IntegrityError, UsageError

T = TypeVar("T")
_ERRORS: dict[str, type[Exception]] = {"usage": UsageError, "integrity": IntegrityError}


@dataclass(frozen=True)
class World:
    """This process's place among the ``size`` processes of one evaluation."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one process that locks the output folder, prints, and writes results."""
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> World:
        """torchrun's variables, else SLURM's, else a single process."""
        for rank, size, local in (("RANK", "WORLD_SIZE", "LOCAL_RANK"),
                                  ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")):
            if rank in environ and size in environ:
                return cls(int(environ[rank]), int(environ[size]), int(environ.get(local, 0)))
        return cls()

    def device(self, requested: str) -> str:
        """The device this rank uses: its own GPU (``cuda:LOCAL_RANK``) when the run asks for CUDA."""
        wants_cuda = requested.startswith("cuda") or (requested == "auto" and torch.cuda.is_available())
        if self.distributed and wants_cuda and requested in ("auto", "cuda"):
            return f"cuda:{self.local_rank}"
        return requested

    def join(self, device_type: str) -> None:
        """Join the process group (nccl on CUDA, gloo on CPU), once per process."""
        if not self.distributed or dist.is_initialized():
            return
        if device_type == "cuda":
            torch.cuda.set_device(self.local_rank)
        seconds = float(os.environ.get("TYPOBENCH_DIST_TIMEOUT", 1800))
        if "MASTER_ADDR" not in os.environ:
            raise UsageError("a distributed run needs MASTER_ADDR and MASTER_PORT: start it with torchrun, or set "
                             "them in the SLURM script (see the README's 'Many GPUs and nodes')")
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=self.rank,
                                world_size=self.size, timeout=timedelta(seconds=seconds))

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share: every ``size``-th item from position ``rank`` (all of them on one process)."""
        return list(items[self.rank::self.size])

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank."""
        if not self.distributed:
            return text
        data = torch.tensor(list(text.encode("utf-8")) if self.leader else [], dtype=torch.uint8)
        length = torch.tensor([len(data)], dtype=torch.long, device=self._device())
        dist.broadcast(length, 0)
        buffer = torch.zeros(int(length.item()), dtype=torch.uint8, device=self._device())
        if self.leader:
            buffer.copy_(data.to(buffer.device))
        dist.broadcast(buffer, 0)
        return bytes(buffer.cpu().tolist()).decode("utf-8")

    def gather_text(self, text: str) -> list[str]:
        """Every rank's ``text``, in rank order, on every rank (padded to one length for the collective)."""
        if not self.distributed:
            return [text]
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8, device=self._device())
        lengths = self.gather_counts(len(data))
        padded = torch.zeros(max(lengths), dtype=torch.uint8, device=data.device)
        padded[: len(data)] = data
        every = [torch.zeros_like(padded) for _ in range(self.size)]
        dist.all_gather(every, padded)
        return [bytes(t[:n].cpu().tolist()).decode("utf-8") for t, n in zip(every, lengths)]

    def gather_rows(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``rows`` [n_r, ...] (n_r may differ), in rank order, on every rank (on the CPU)."""
        if not self.distributed:
            return [rows]
        counts = self.gather_counts(len(rows))
        padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=rows.dtype, device=self._device())
        padded[: len(rows)] = rows.to(padded.device)
        every = [torch.zeros_like(padded) for _ in range(self.size)]
        dist.all_gather(every, padded)
        return [t[:n].cpu() for t, n in zip(every, counts)]

    def gather_counts(self, count: int) -> list[int]:
        """Every rank's ``count``, in rank order, on every rank."""
        if not self.distributed:
            return [count]
        mine = torch.tensor([count], dtype=torch.long, device=self._device())
        every = [torch.zeros_like(mine) for _ in range(self.size)]
        dist.all_gather(every, mine)
        return [int(t.item()) for t in every]

    def leader_does(self, work: Callable[[], T]) -> T | None:
        """Run ``work`` on rank 0 only; the others wait for it. An error it raises (usage or integrity) is
        raised on every rank, so every process exits with the same status and rank 0 alone prints it."""
        outcome, failure = None, ""
        if self.leader:
            try:
                outcome = work()
            except (UsageError, IntegrityError) as exc:
                kind = "usage" if isinstance(exc, UsageError) else "integrity"
                failure = f"{kind}:{exc}"
                if not self.distributed:
                    raise
        failure = self.broadcast_text(failure)
        if failure:
            kind, _, message = failure.partition(":")
            raise _ERRORS[kind](message)
        return outcome

    def exit_together(self, status: int, seconds: float = 30.0) -> None:
        """Under torchrun, leave with ``status`` only once every rank has reached its exit.

        torchrun sends SIGTERM to the ranks still running as soon as one exits non-zero: without this, a
        usage error that every rank finds (each validates its own arguments) ends the slower ranks by a
        signal instead of by their own status 2. So each rank first waits for the others in torchrun's
        own key-value store (not the process group, which a rank may not have joined yet), and from then
        on a SIGTERM ends it with ``status`` too. It then leaves at once (``os._exit``): the interpreter's
        teardown restores the default SIGTERM action and can take long enough with torch loaded for
        torchrun to kill it by signal. Elsewhere (one process, srun) it returns at once.
        """
        if not self.distributed or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
            return
        signal.signal(signal.SIGTERM, lambda *_: os._exit(status))
        prefix = f"typobench/exit/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        try:
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                  timeout=timedelta(seconds=seconds))
            store.set(f"{prefix}{self.rank}", "exit")
            store.wait([f"{prefix}{rank}" for rank in range(self.size)])
        except dist.DistError:  # the store gone (torchrun ending the job), or a rank that never came
            pass  # a rank that failed otherwise (or not at all) must not hold this one: leave now
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
            else torch.device("cpu")


__all__ = ["World"]
