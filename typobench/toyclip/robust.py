"""Robust fine-tuning of an organism's image tower: ``python -m typobench.toyclip.robust --loss fare|tecoa --out DIR``.

Starts from a built-in model (``--base toyclip``), trains only its image tower (the text tower and the logit scale
stay frozen), with BatchNorm in eval mode (running statistics frozen, as in the recipes this follows), under
bf16 autocast on CPU. The loss is FARE or TeCoA (``typobench.toyclip.robust_loss``), each on L-inf PGD
perturbations (``--eps``, default 2/255). The photos are CIFAR-10 *train*, split into training photos and
``--validation`` photos held out of training to choose the recipe (clean and PGD-10 zero-shot accuracy on them is
logged every ``--eval-every`` steps and at the end); no CIFAR-10 test image is used. Everything random comes
from ``--seed``: batches and attack starts are pure functions of seed and step, so a run resumed from its
checkpoint ends with bit-identical weights.

Writes to ``--out``: ``NAME.safetensors`` (the whole CLIP model, the image tower fine-tuned; ``--name``, default
``toyclip-fare``/``toyclip-tecoa``), ``NAME-visual.safetensors`` (the image tower alone, for ``--vision-tower``),
``recipe.json``, ``train.log`` and ``checkpoint.pt`` (``--no-resume`` starts over).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see typobench.toyclip.train

import argparse
import copy
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from typobench.core.errors import UsageError
from typobench.core.options import add_arguments, check, declared, from_namespace, option
from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.models import load_model
from typobench.models.loading import convolutions_channels_last
from typobench.toyclip.model import class_text_embeddings, normalise, param_groups, save_weights
from typobench.toyclip.photos import PhotoBank
from typobench.toyclip.run_files import TrainLog, write_json
from typobench.toyclip.robust_loss import (LOSSES, TrainPhotos, fare_attack, fare_loss,
                                           split_indices, tecoa_attack, tecoa_loss, upsample, zero_shot_logits)
from typobench.toyclip.robust_eval import validation_accuracy

RECIPE_VERSION = 1
BASES = ("toyclip", "toyclip-vit", "tiny-rn")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _eps(text: str) -> float:
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or fraction such as 2/255") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1), e.g. 2/255")
    return value


@dataclass
class RobustOptions:
    """Every setting of a robust fine-tuning run, each declared once: the flags of ``python -m
    typobench.toyclip.robust``, their defaults and their checks. ``eps`` and ``attack_step_size`` are written as
    fractions (``2/255``), which a declared float flag does not parse: their flags stay in ``build_parser``."""

    loss: str = option(help="FARE (embedding) or TeCoA (zero-shot CE)", choices=LOSSES)
    out: str = option(help="output folder")
    base: str = option("toyclip", "the built-in model to start from", choices=BASES)
    name: str | None = option(None, "name of the weights file (default: BASE-LOSS)")
    data_root: str | None = option(None, "the cifar10-jpeg folder (with train/)")
    seed: int = option(0, "seed of the batches and the attack starts")
    steps: int = option(600, "optimiser steps", minimum=1)
    batch_size: int = option(128, "photos per step", minimum=1)
    lr: float = option(1e-4, "AdamW peak learning rate (linear warm-up, cosine decay)")
    warmup: float = option(0.05, "fraction of the steps spent warming up")
    weight_decay: float = option(1e-4, "AdamW weight decay (not on gains, biases, norms)")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    eps: float = 2 / 255
    attack_steps: int = option(3, "PGD steps of the inner maximisation", minimum=1)
    attack_step_size: float = 1 / 255
    validation: int = option(2000, "training photos held out to choose the recipe", minimum=1)
    eval_images: int = option(500, "validation photos scored at each evaluation", minimum=1)
    eval_every: int = option(0, "evaluate every N steps (0: only at the end)")
    photo_limit: int | None = option(None, "use only the first N training photos (tests)", minimum=1)
    threads: int = option(2, "torch threads", minimum=1)
    precision: str = option("bf16", "image tower under bf16 autocast", choices=("bf16", "fp32"))
    log_every: int = option(10, "log the mean loss every N steps", minimum=1)
    checkpoint_every: int = option(25, "write checkpoint.pt every N steps", minimum=1)
    fp32: bool = option(False, "save fp32 weights (default fp16)")
    no_resume: bool = option(False, "ignore an existing checkpoint.pt in --out")
    stop_after: int | None = option(None, "stop at this step with a checkpoint (run the same command again to "
                                          "continue)", minimum=1, metavar="STEP")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m typobench.toyclip.robust", description=__doc__.split("\n\n")[0])
    names = [item.name for item in declared(RobustOptions)]
    add_arguments(p, RobustOptions, names[:names.index("attack_steps")])
    # A fraction such as 2/255: no declared kind parses one (a float flag reads 2/255 as an error).
    p.add_argument("--eps", type=_eps, default="2/255", help="L-inf radius of the training attack (default: 2/255)")
    add_arguments(p, RobustOptions, ["attack_steps"])
    p.add_argument("--attack-step-size", type=_eps, default="1/255", help="PGD sign-step size (default: 1/255)")
    add_arguments(p, RobustOptions, names[names.index("attack_steps") + 1:])
    return p


def read_options(args: argparse.Namespace | RobustOptions) -> RobustOptions:
    """The parsed flags as :class:`RobustOptions` (``--name`` defaulting to BASE-LOSS), checked."""
    if not isinstance(args, RobustOptions):
        args = from_namespace(RobustOptions, args, eps=args.eps, attack_step_size=args.attack_step_size)
    check(args)
    return dataclasses.replace(args, name=args.name or f"{args.base}-{args.loss}")


# Settings that must match for a checkpoint to be resumed.
_RECIPE_KEYS = ("loss", "base", "seed", "steps", "batch_size", "lr", "warmup", "weight_decay", "grad_clip", "eps",
                "attack_steps", "attack_step_size", "validation", "photo_limit", "precision")


def recipe_of(args: RobustOptions, photos: int) -> dict[str, Any]:
    settings = {k: getattr(args, k) for k in _RECIPE_KEYS}
    return {"recipe_version": RECIPE_VERSION, "name": args.name, **settings, "training_photos": photos,
            "loss_formula": {"fare": "max_{|d|inf<=eps} ||f(x+d) - f_orig(x)||^2 (unnormalised embeddings)",
                             "tecoa": "max_{|d|inf<=eps} CE(scale*cos(f(x+d), t_k), y) (frozen class texts)"}[args.loss],
            "frozen": "text tower, logit scale, BatchNorm running statistics (eval mode)",
            "optimizer": "AdamW betas (0.9, 0.999), linear warm-up then cosine to 0",
            "data": "cifar10-jpeg train minus a seed-0 validation split",
            "command": " ".join(["python -m typobench.toyclip.robust", *sys.argv[1:]])}


def _schedule(args: RobustOptions):
    warm = max(1, round(args.warmup * args.steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))
    return factor


class RobustTraining:
    """The model, its frozen original tower and class texts, the optimiser, and the step loop."""

    def __init__(self, args: RobustOptions, recipe: dict[str, Any], log: TrainLog, out: Path) -> None:
        self.args, self.recipe, self.log, self.out = args, recipe, log, out
        self.checkpoint_path = out / "checkpoint.pt"
        loaded = load_model(args.base)
        self.model = loaded.model.eval()  # eval mode throughout: BatchNorm statistics stay frozen
        for p in self.model.parameters():
            p.requires_grad_(False)
        convolutions_channels_last(self.model)
        self.original = copy.deepcopy(self.model.visual).eval()
        for p in self.model.visual.parameters():
            p.requires_grad_(True)
        self.class_text = class_text_embeddings(self.model, loaded.tokenizer, list(CIFAR10_CLASSNAMES))
        self.scale = float(self.model.logit_scale.exp())
        self.optimizer = torch.optim.AdamW(param_groups(self.model.visual, args.weight_decay), lr=args.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _schedule(args))
        self.start_step, self.elapsed_before, self.evals, self.losses = 0, 0.0, [], []

    def encode(self, x: torch.Tensor, tower: torch.nn.Module | None = None) -> torch.Tensor:
        tower = self.model.visual if tower is None else tower
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.args.precision == "bf16"):
            return tower(normalise(x, self.model)).float()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return zero_shot_logits(self.encode(x), self.class_text, self.scale)

    def loss(self, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        a = self.args
        generator = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        if a.loss == "fare":
            with torch.no_grad():
                original = self.encode(x, self.original)
            adv = fare_attack(self.encode, x, original, a.eps, a.attack_step_size, a.attack_steps, generator)
            return fare_loss(self.encode(adv), original)
        adv = tecoa_attack(self.logits, x, y, a.eps, a.attack_step_size, a.attack_steps, generator)
        return tecoa_loss(self.encode(adv), self.class_text, y, self.scale)

    def step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> float:
        loss = self.loss(x, y, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.args.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.visual.parameters(), self.args.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def resume(self) -> None:
        if not self.checkpoint_path.exists() or self.args.no_resume:
            return
        state = torch.load(self.checkpoint_path, weights_only=True)
        if any(state["recipe"].get(k) != self.recipe.get(k) for k in _RECIPE_KEYS):
            raise UsageError(f"{self.checkpoint_path} belongs to another recipe: use another --out or --no-resume")
        self.model.visual.load_state_dict(state["visual"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_step, self.elapsed_before, self.evals = state["step"], state["elapsed_s"], state["evals"]
        self.log(f"resumed from {self.checkpoint_path} at step {self.start_step}")

    def save_checkpoint(self, done: int, t0: float) -> None:
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save({"visual": self.model.visual.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(), "step": done, "recipe": self.recipe,
                    "elapsed_s": self.elapsed_before + time.time() - t0, "evals": self.evals}, tmp)
        os.replace(tmp, self.checkpoint_path)

    def validate(self, validation: TrainPhotos, done: int) -> None:
        x, y = validation.ordered(self.args.eval_images)
        figures = validation_accuracy(self.logits, x, y, self.args.eps)
        self.evals.append({"step": done, **figures})
        self.log(f"step {done}: validation ({len(y)} train-split photos) clean {figures['clean']:.3f} "
                 f"pgd10 {figures['pgd10']:.3f}")

    def run(self, photos: TrainPhotos, validation: TrainPhotos) -> dict[str, Any]:
        a, t0 = self.args, time.time()
        t_last = t0
        for step in range(self.start_step, a.steps):
            x, y = photos.batch(step, a.batch_size)
            self.losses.append(self.step(x, y, step))
            done = step + 1
            if done % a.log_every == 0 or done == a.steps:
                now = time.time()
                per = (now - t_last) / min(a.log_every, done - self.start_step)
                t_last = now
                self.log(f"step {done}/{a.steps} loss {np.mean(self.losses[-a.log_every:]):.4f} "
                         f"lr {self.scheduler.get_last_lr()[0]:.2e} {per:.2f}s/step eta {per * (a.steps - done):.0f}s")
            if a.eval_every and done % a.eval_every == 0 and done != a.steps:
                self.validate(validation, done)
            stopping = a.stop_after is not None and done >= a.stop_after and done != a.steps
            if (done % a.checkpoint_every == 0 or stopping) and done != a.steps:
                self.save_checkpoint(done, t0)
            if stopping:
                self.log(f"stopped at step {done} (--stop-after); run the same command again to continue")
                return {**self.recipe, "stopped_at": done}
        return self.finish(validation, t0)

    def finish(self, validation: TrainPhotos, t0: float) -> dict[str, Any]:
        wall = self.elapsed_before + time.time() - t0
        self.validate(validation, self.args.steps)
        recipe = {**self.recipe, "train_wall_s": round(wall, 1), "validation_evals": self.evals,
                  "final_loss": float(np.mean(self.losses[-self.args.log_every:])) if self.losses else None}
        weights = self.out / f"{self.args.name}.safetensors"
        recipe["weights_sha256"], recipe["tensors_sha256"] = save_weights(
            self.model, weights, {k: v for k, v in recipe.items() if k != "validation_evals"}, self.args.fp32)
        save_vision_tower(self.model, self.out / f"{self.args.name}-visual.safetensors")
        write_json(self.out / "recipe.json", recipe)
        self.log(f"finished in {wall:.0f}s; wrote {weights}")
        return recipe


def save_vision_tower(model: torch.nn.Module, path: Path) -> None:
    """``model.visual``'s state dict alone (fp32, keys as in ``model.visual``): a ``--vision-tower`` file."""
    state = {k: v.detach().float().contiguous() if v.is_floating_point() else v.detach().contiguous()
             for k, v in model.visual.state_dict().items()}
    save_file(state, str(path))


def load_photos(args: RobustOptions, size: int) -> tuple[TrainPhotos, TrainPhotos]:
    """The training and validation photos of CIFAR-10 train (``--validation`` of them held out), at ``size`` px."""
    bank = PhotoBank.load("cifar10-jpeg", args.data_root, "train", limit=args.photo_limit)
    if args.validation >= len(bank):
        raise UsageError(f"--validation {args.validation} leaves no training photo of {len(bank)}: use fewer")
    train_idx, val_idx = split_indices(len(bank), args.validation, seed=0)
    images = upsample(bank.images, size)
    return (TrainPhotos(images[train_idx], bank.labels[train_idx], args.seed),
            TrainPhotos(images[val_idx], bank.labels[val_idx], args.seed))


def train(args: argparse.Namespace | RobustOptions) -> dict[str, Any]:
    """One sitting of robust fine-tuning (see the module's docstring); the recipe, as written to recipe.json."""
    args = read_options(args)
    if not args.data_root or not (Path(args.data_root) / "train").is_dir():
        raise UsageError(f"--data-root {args.data_root!r} must be the cifar10-jpeg folder that holds train/")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    log = TrainLog(out / "train.log")
    try:
        t = time.time()
        photos, validation = load_photos(args, 64)
        log(f"{len(photos)} training and {len(validation)} validation photos in {time.time() - t:.0f}s")
        training = RobustTraining(args, recipe_of(args, len(photos)), log, out)
        training.resume()
        return training.run(photos, validation)
    finally:
        log.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        train(build_parser().parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
