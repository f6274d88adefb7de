"""Train an organism from scratch on CPU: ``python -m typobench.toyclip.train --data-root DIR --out DIR --seed 0``.

The model is the open_clip config ``typobench-toyclip`` (ResNet; ``--model toyclip-vit``: the ViT
``typobench-toyclip-vit``), both shipped in ``typobench/models/configs``;
the data is the mixture of ``typobench.toyclip.mixture``; the loss is the multi-positive contrastive loss
of ``typobench.toyclip.loss``. Everything random comes from ``--seed``: the initial weights
(``torch.manual_seed``) and every batch (a pure function of seed and step), so a run, or a run
resumed from its checkpoint, repeats the same training.

Writes to ``--out``:

* ``MODEL.safetensors`` (``toyclip.safetensors``, ``toyclip-vit.safetensors``): the weights (fp16 by default) with the recipe in the file's metadata,
* ``recipe.json``: every setting, the library versions, wall time and the last losses,
* ``train.log``: one line per logged step (also printed),
* ``checkpoint.pt``: model, optimiser and scheduler state every ``--checkpoint-every`` steps, so an
  interrupted run continues where it stopped (``--no-resume`` starts over).

Copy ``MODEL.safetensors`` to ``typobench/models/weights/`` to ship it as the built-in ``MODEL``.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning. Must be set before torch loads its OpenMP runtime; on a
# shared 2-core machine, spinning threads made a step 3x slower (5 s instead of 1.7 s, measured here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import json
import math
import platform
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from typobench.core.errors import UsageError
from typobench.core.options import add_arguments, check, declared, from_namespace, option
from typobench.toyclip.distill import Teacher
from typobench.toyclip.loss import dedupe_captions, multi_positive_contrastive_loss
from typobench.toyclip.mixture import Mixture
from typobench.toyclip.model import (
    OPEN_CLIP_NAME,
    ORGANISMS,
    create_model,
    is_vision_transformer,
    normalise,
    param_groups,
    quick_zeroshot_accuracy,
    save_weights,
)
from typobench.toyclip.photos import PhotoBank
from typobench.toyclip.run_files import TrainLog, write_json
from typobench.toyclip.recipes import PRESETS, MixtureConfig, preset
from typobench.toyclip.vocabulary import COLOUR_TEMPLATES, HELD_OUT_FONT_FAMILY, training_fonts

RECIPE_VERSION = 1


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` (value parsed as JSON, e.g. ``word_caption_p=0.6`` or ``fractions={...}``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: use key=value, e.g. word_caption_p=0.6")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise SystemExit(f"--set {item!r}: the value must be JSON (numbers, lists, objects)") from None
    return out


@dataclass
class TrainOptions:
    """Every setting of a training run, each declared once: the flags of ``python -m typobench.toyclip.train``,
    their defaults (those of the shipped ``toyclip``) and their checks."""

    out: str = option(help="output folder")
    data_root: str | None = option(None, "CIFAR-10 root: the cifar10-jpeg folder (with train/), or torchvision's "
                                         "root with --dataset cifar10")
    dataset: str = option("cifar10-jpeg", "the training photos", choices=("cifar10-jpeg", "cifar10"))
    download: bool = option(False, "let torchvision download CIFAR-10 (--dataset cifar10)")
    model: str = option("toyclip", "the organism: toyclip (ResNet image tower) or toyclip-vit (ViT, patch 8)",
                        choices=tuple(sorted(ORGANISMS)))
    seed: int = option(0, "seed of the initial weights and of every batch")
    steps: int = option(2800, "optimiser steps", minimum=1)
    batch_size: int = option(256, "samples per step", minimum=1)
    lr: float = option(2e-3, "peak learning rate of the one-cycle schedule")
    pct_start: float = option(0.1, "fraction of the steps spent warming up")
    weight_decay: float = option(0.1, "AdamW weight decay (not on gains, biases, norms, the logit scale)")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    threads: int = option(2, "torch threads for the training step", minimum=1)
    precision: str = option("bf16", "image tower forward under bf16 autocast (weights and optimiser stay fp32); "
                                    "2.2x faster on CPUs with AMX/AVX-512 bf16, as measured here",
                            choices=("bf16", "fp32"))
    workers: int = option(1, "processes that render batches ahead (0: in the main process)", minimum=0)
    photo_limit: int | None = option(None, "use only the first N training photos (quick tests)", minimum=1)
    mixture: str = option("r7", "named training mixture (recipes.PRESETS)", choices=tuple(sorted(PRESETS)))
    overrides: tuple[str, ...] = option((), "override a MixtureConfig field, e.g. --set word_caption_p=0.6",
                                        flag="--set", metavar="KEY=JSON", repeat=True)
    distill_from: str | None = option(None, "a built-in organism whose image embeddings the image tower learns to "
                                            "match (1 - cosine); its text tower and logit scale are copied and frozen",
                                      choices=("toyclip",), metavar="ORGANISM")
    distill_weight: float = option(10.0, "weight of the distillation loss beside the contrastive loss", minimum=0.0)
    log_every: int = option(20, "log the mean loss every N steps", minimum=1)
    eval_every: int = option(1400, "clean zero-shot accuracy on the bundled sample (0: only at the end)")
    checkpoint_every: int = option(100, "write checkpoint.pt every N steps", minimum=1)
    fp32: bool = option(False, "save fp32 weights (default fp16, half the size)")
    no_resume: bool = option(False, "ignore an existing checkpoint.pt in --out")
    stop_after: int | None = option(None, "stop at this step with a checkpoint (training over several sittings; run "
                                          "again to go on)", metavar="STEP")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m typobench.toyclip.train", description=__doc__.split("\n\n")[0])
    add_arguments(p, TrainOptions, [item.name for item in declared(TrainOptions)])
    return p


def read_options(args: argparse.Namespace | TrainOptions) -> TrainOptions:
    """The parsed flags as :class:`TrainOptions`, checked (a ``UsageError`` names the flag)."""
    options = args if isinstance(args, TrainOptions) else from_namespace(TrainOptions, args)
    check(options)
    return options


class _Batches(torch.utils.data.Dataset):
    """Index = step; item = that step's batch (lets a DataLoader worker render ahead, in order)."""

    def __init__(self, mixture: Mixture, batch_size: int, steps: int) -> None:
        self.mixture, self.batch_size, self.steps = mixture, batch_size, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> dict[str, Any]:
        b = self.mixture.batch(step, self.batch_size)
        return {"images": b.images, "captions": b.captions, "keys": b.keys}


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


# CLIP's cap on the learned temperature: logits at most 100 x cosine similarity.
_MAX_LOGIT_SCALE = math.log(100.0)


def _recipe(args: TrainOptions, mixture_config: MixtureConfig, photos: int, teacher: Teacher | None) -> dict[str, Any]:
    """Every setting of the run, written to recipe.json and the weights' metadata (``photos``: how many)."""
    return {
        "recipe_version": RECIPE_VERSION,
        "model": args.model,
        "open_clip_name": ORGANISMS[args.model],
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "optimizer": {"name": "AdamW", "lr": args.lr, "betas": [0.9, 0.98], "eps": 1e-6,
                      "weight_decay": args.weight_decay, "grad_clip": args.grad_clip,
                      "schedule": "OneCycleLR (cosine)", "pct_start": args.pct_start},
        "loss": "multi-positive symmetric InfoNCE over deduplicated captions, positives = same caption key",
        "data": {"dataset": args.dataset, "split": "train", "photos": photos, "photo_limit": args.photo_limit},
        "distill": teacher.record() if teacher else None,
        "mixture_preset": args.mixture,
        "mixture": mixture_config.to_dict(),
        "vocabulary": list(mixture_config.words),
        "word_templates": list(mixture_config.word_templates),
        "colour_templates": list(COLOUR_TEMPLATES),
        "training_fonts": list(training_fonts()),
        "held_out_font_family": HELD_OUT_FONT_FAMILY,
        "threads": args.threads,
        "precision": args.precision,
        "workers": args.workers,
        "command": " ".join(["python -m typobench.toyclip.train", *sys.argv[1:]]),
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__),
                     "open_clip": open_clip.__version__, "numpy": np.__version__},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }


class _Training:
    """One sitting of a run: the model, its optimiser and schedule, and the bookkeeping of the step loop.

    A run may take several sittings (``--stop-after``): each resumes from ``checkpoint.pt`` the model,
    optimiser, schedule, step and the time spent so far.
    """

    def __init__(self, args: TrainOptions, recipe: dict[str, Any], log: TrainLog, out: Path,
                 teacher: Teacher | None) -> None:
        self.args, self.recipe, self.log, self.out, self.teacher = args, recipe, log, out, teacher
        self.checkpoint_path = out / "checkpoint.pt"
        self.model = create_model(args.seed, ORGANISMS[args.model])
        if teacher:  # before the optimiser: the frozen text tower is left out of it
            teacher.adopt_text_tower(self.model)
        # channels_last convolutions: 28% faster on CPU here, same maths (save_weights stores contiguous tensors).
        # A ViT has one convolution (the patch embedding): nothing to gain.
        vit = is_vision_transformer(self.model)
        self.memory_format = torch.contiguous_format if vit else torch.channels_last
        # The plain (math) attention kernel for the ViT: on CPU, the fused flash kernel's backward took 92 ms
        # per block at 65 tokens, and the whole step 0.87 s instead of 0.62 s (measured here). The ResNet
        # keeps the default kernels, so its shipped weights still reproduce bit for bit.
        self.attention = (lambda: sdpa_kernel(SDPBackend.MATH)) if vit else contextlib.nullcontext
        self.model.visual.to(memory_format=self.memory_format)
        self.model.train()
        self.tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, args.weight_decay), lr=args.lr,
                                           betas=(0.9, 0.98), eps=1e-6)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=args.lr, total_steps=args.steps,
                                                             pct_start=args.pct_start)
        # CPU seconds of the training process (all its threads; not the render worker): unlike wall time,
        # hardly inflated by other jobs on a shared machine.
        self.start_step, self.elapsed_before, self.cpu_before = 0, 0.0, 0.0
        self.losses: deque[float] = deque(maxlen=args.log_every)
        self.evals: list[dict[str, Any]] = []
        # Clocks of this sitting (wall, CPU, last logged step), started by ``run``.
        self.t0 = self.c0 = self.t_last = 0.0
        self.last_step = 0

    def resume(self) -> None:
        """Continue from ``checkpoint.pt`` when there is one (unless ``--no-resume``) of this very recipe."""
        args, path = self.args, self.checkpoint_path
        if not path.exists() or args.no_resume:
            return
        state = torch.load(path, weights_only=True)
        if any(state["recipe"].get(key) != self.recipe.get(key) for key in ("mixture", "seed", "steps", "open_clip_name", "distill")):
            raise SystemExit(f"{path} belongs to another recipe: use another --out or --no-resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_step, self.elapsed_before, self.cpu_before = state["step"], state["elapsed_s"], state.get("cpu_s", 0.0)
        self.log(f"resumed from {path} at step {self.start_step}")

    def loader(self, mixture: Mixture) -> torch.utils.data.DataLoader:
        """The batches of the steps still to do, in order (rendered ahead by ``--workers`` processes)."""
        args = self.args
        return torch.utils.data.DataLoader(
            _Batches(mixture, args.batch_size, args.steps),
            batch_size=None,
            sampler=range(self.start_step, args.steps),
            num_workers=args.workers,
            worker_init_fn=_worker_init if args.workers else None,
            prefetch_factor=2 if args.workers else None,
            persistent_workers=False,
        )

    def run(self, mixture: Mixture) -> dict[str, Any]:
        """Train to ``--steps`` (or ``--stop-after``); the recipe, with ``stopped_at`` when stopped early."""
        args = self.args
        loader = self.loader(mixture)
        self.log(f"training {ORGANISMS[args.model]} ({sum(p.numel() for p in self.model.parameters()) / 1e6:.1f}M parameters) "
                 f"for {args.steps} steps of {args.batch_size}, seed {args.seed}, from step {self.start_step}")
        self.t0, self.c0 = time.time(), time.process_time()
        self.t_last, self.last_step = self.t0, self.start_step
        for step, batch in enumerate(loader, start=self.start_step):
            texts = self.step(batch)
            done = step + 1
            self.report(done, texts)
            stopping = args.stop_after is not None and done >= args.stop_after and done != args.steps
            if (done % args.checkpoint_every == 0 or stopping) and done != args.steps:
                self.save_checkpoint(done)
            if stopping:
                self.log(f"stopped at step {done} (--stop-after); run the same command again to continue")
                return {**self.recipe, "stopped_at": done}
        return self.finish()

    def step(self, batch: dict[str, Any]) -> int:
        """One optimiser step on ``batch`` (images ``[B, 3, 64, 64]``, captions, keys); how many distinct texts."""
        model, args = self.model, self.args
        unique, positives = dedupe_captions(batch["captions"], batch["keys"])
        images = normalise(batch["images"], model).contiguous(memory_format=self.memory_format)
        with self.attention():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                image_features = model.encode_image(images, normalize=True)
            image_features = image_features.float()
            text_features = model.encode_text(self.tokenizer(unique), normalize=True)
            loss = multi_positive_contrastive_loss(image_features, text_features, positives, model.logit_scale.exp())
            if self.teacher:
                loss = loss + self.teacher.loss(image_features, batch["images"])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if args.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, _MAX_LOGIT_SCALE)
        self.losses.append(loss.item())
        return len(unique)

    def report(self, done: int, texts: int) -> None:
        """Log the loss every ``--log-every`` steps; measure accuracy every ``--eval-every`` steps."""
        args = self.args
        if done % args.log_every == 0 or done == args.steps:
            now = time.time()
            per_step = (now - self.t_last) / max(1, done - self.last_step)
            self.t_last, self.last_step = now, done
            self.log(f"step {done}/{args.steps} loss {np.mean(self.losses):.4f} lr {self.scheduler.get_last_lr()[0]:.2e} "
                     f"scale {self.model.logit_scale.exp().item():.1f} texts {texts} {per_step:.2f}s/step "
                     f"elapsed {self.elapsed_before + now - self.t0:.0f}s eta {per_step * (args.steps - done):.0f}s")
        if args.eval_every and done % args.eval_every == 0 and done != args.steps:
            acc = quick_zeroshot_accuracy(self.model)
            self.evals.append({"step": done, "clean_zeroshot_sample500": acc})
            self.log(f"step {done}: clean zero-shot accuracy on 500 cifar10-sample images {acc:.3f}")

    def save_checkpoint(self, done: int) -> None:
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "step": done, "recipe": self.recipe,
                    "elapsed_s": self.elapsed_before + time.time() - self.t0,
                    "cpu_s": self.cpu_before + time.process_time() - self.c0}, tmp)
        os.replace(tmp, self.checkpoint_path)

    def finish(self) -> dict[str, Any]:
        """Measure the trained model, write the weights and recipe.json; the recipe with the results."""
        args, recipe, out = self.args, self.recipe, self.out
        wall = self.elapsed_before + time.time() - self.t0
        cpu = self.cpu_before + time.process_time() - self.c0
        self.model.eval()
        acc = quick_zeroshot_accuracy(self.model)
        self.evals.append({"step": args.steps, "clean_zeroshot_sample500": acc})
        self.log(f"finished in {wall:.0f}s ({wall / 60:.1f} min, {cpu / 60:.1f} CPU-min); clean zero-shot accuracy on 500 cifar10-sample images {acc:.3f}")
        recipe.update({"train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
                       "final_loss": float(np.mean(self.losses)) if self.losses else None,
                       "quick_evals": self.evals, "precision_saved": "fp32" if args.fp32 else "fp16"})
        weights = out / f"{args.model}.safetensors"
        recipe["weights_sha256"], recipe["tensors_sha256"] = save_weights(
            self.model, weights, {k: v for k, v in recipe.items() if k != "quick_evals"}, args.fp32)
        write_json(out / "recipe.json", recipe)
        self.log(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {out / 'recipe.json'}")
        return recipe


def train(args: argparse.Namespace | TrainOptions) -> dict[str, Any]:
    """One sitting of training (see the module's docstring); the recipe, as written to recipe.json."""
    args = read_options(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    log = TrainLog(out / "train.log")
    try:
        mixture_config = preset(args.mixture, **_parse_overrides(args.overrides))
        t_load = time.time()
        photos = PhotoBank.load(args.dataset, args.data_root, "train", download=args.download, limit=args.photo_limit)
        log(f"loaded {len(photos)} training photos from {photos.source} in {time.time() - t_load:.1f}s")
        mixture = Mixture(photos, mixture_config, seed=args.seed)
        teacher = Teacher(args.distill_from, args.distill_weight, args.precision == "bf16") if args.distill_from else None
        training = _Training(args, _recipe(args, mixture_config, len(photos), teacher), log, out, teacher)
        training.resume()
        return training.run(mixture)
    finally:
        log.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        options = read_options(parser.parse_args(argv))
    except UsageError as exc:
        parser.error(str(exc))
    if options.dataset == "cifar10-jpeg" and not options.data_root:
        raise SystemExit("--data-root is required: the cifar10-jpeg folder that holds train/")
    train(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
