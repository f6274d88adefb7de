"""Train toyclip from scratch on CPU: ``python -m typobench.toyclip.train --data-root DIR --out DIR --seed 0``.

The model is the open_clip config ``typobench-toyclip`` (shipped in ``typobench/models/configs``);
the data is the mixture of ``typobench.toyclip.data``; the loss is the multi-positive contrastive loss
of ``typobench.toyclip.loss``. Everything random comes from ``--seed``: the initial weights
(``torch.manual_seed``) and every batch (a pure function of seed and step), so a run, or a run
resumed from its checkpoint, repeats the same training.

Writes to ``--out``:

* ``toyclip.safetensors``: the weights (fp16 by default) with the recipe in the file's metadata,
* ``recipe.json``: every setting, the library versions, wall time and the last losses,
* ``train.log``: one line per logged step (also printed),
* ``checkpoint.pt``: model, optimiser and scheduler state every ``--checkpoint-every`` steps, so an
  interrupted run continues where it stopped (``--no-resume`` starts over).

Copy ``toyclip.safetensors`` to ``typobench/models/weights/`` to ship it as the built-in ``toyclip``.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning. Must be set before torch loads its OpenMP runtime; on a
# shared 2-core machine, spinning threads made a step 3x slower (5 s instead of 1.7 s, measured here).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import platform
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import COLOUR_TEMPLATES, HELD_OUT_FONT_FAMILY, PRESETS, Mixture, PhotoBank, preset, training_fonts
from .loss import dedupe_captions, multi_positive_contrastive_loss

OPEN_CLIP_NAME = "typobench-toyclip"
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m typobench.toyclip.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-root", help="CIFAR-10 root: the cifar10-jpeg folder (with train/), or torchvision's root with --dataset cifar10")
    p.add_argument("--dataset", default="cifar10-jpeg", choices=("cifar10-jpeg", "cifar10"))
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 (--dataset cifar10)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2800)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--pct-start", type=float, default=0.1, help="fraction of the steps spent warming up")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads for the training step")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32"),
                   help="image tower forward under bf16 autocast (weights and optimiser stay fp32); "
                        "2.2x faster on CPUs with AMX/AVX-512 bf16, as measured here")
    p.add_argument("--workers", type=int, default=1, help="processes that render batches ahead (0: in the main process)")
    p.add_argument("--photo-limit", type=int, default=None, help="use only the first N training photos (quick tests)")
    p.add_argument("--mixture", default="r7", choices=sorted(PRESETS), help="named training mixture (data.PRESETS)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=JSON",
                   help="override a MixtureConfig field, e.g. --set word_caption_p=0.6")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=1400, help="clean zero-shot accuracy on the bundled sample (0: only at the end)")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--fp32", action="store_true", help="save fp32 weights (default fp16, half the size)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint.pt in --out")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                   help="stop at this step with a checkpoint (training over several sittings; run again to go on)")
    return p


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


def create_model(seed: int) -> torch.nn.Module:
    import open_clip

    import typobench.models.builtin  # noqa: F401  registers typobench-* configs with open_clip

    torch.manual_seed(seed)
    return open_clip.create_model(OPEN_CLIP_NAME, pretrained=None)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # open_clip's rule: no decay on gains, biases, norms and the logit scale.
    def exclude(n: str, p: torch.Tensor) -> bool:
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]


@torch.no_grad()
def quick_zeroshot_accuracy(model: torch.nn.Module, limit: int = 500) -> float:
    """Clean zero-shot accuracy (18 CIFAR templates) on the first ``limit`` images of the bundled sample."""
    import open_clip
    from PIL import Image

    from typobench.data import load_dataset
    from typobench.data.templates import CIFAR_TEMPLATES

    was_training = model.training
    model.eval()
    tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)

    def transform(image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB").resize((64, 64), Image.BICUBIC)
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)

    ds = load_dataset("cifar10-sample", transform=transform)
    weights = []
    for name in ds.classnames:
        emb = model.encode_text(tokenizer([t.format(name) for t in CIFAR_TEMPLATES]), normalize=True).mean(0)
        weights.append(emb / emb.norm())
    classifier = torch.stack(weights, 1)
    # Spread over the classes: the sample is stored class by class.
    order = np.random.default_rng(0).permutation(len(ds))[:limit]
    mean = torch.tensor(model.visual.preprocess_cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.preprocess_cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)
    correct = 0
    for start in range(0, len(order), 250):
        idx = order[start:start + 250]
        x = torch.stack([ds[int(i)][0] for i in idx])
        feats = model.encode_image((x - mean) / std, normalize=True)
        pred = (feats @ classifier).argmax(1)
        correct += int((pred == torch.tensor([ds.labels[int(i)] for i in idx])).sum())
    model.train(was_training)
    return correct / len(order)


def _normalise(images: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    cfg = getattr(model.visual, "preprocess_cfg", {})
    mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)
    return (images - mean) / std


def save_weights(model: torch.nn.Module, path: Path, recipe: dict[str, Any], fp32: bool = False) -> tuple[str, str]:
    """Write the state dict as safetensors (fp16 unless ``fp32``) with ``recipe`` as metadata.

    Returns the file's sha256 and the *tensors'* sha256 (names, dtypes, shapes and bytes, in name order):
    the file's hash also covers the metadata (wall time, machine), the tensors' only what training made.
    """
    from safetensors.torch import save_file

    from typobench.models.loading import file_sha256, tensors_sha256

    dtype = torch.float32 if fp32 else torch.float16
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}
    state.update({k: v.detach().contiguous() for k, v in model.state_dict().items() if not v.is_floating_point()})
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"typobench_recipe": json.dumps(recipe, sort_keys=True)})
    os.replace(tmp, path)
    return file_sha256(path), tensors_sha256(state)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> dict[str, Any]:
    import open_clip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    log_file = open(out / "train.log", "a", buffering=1)

    def log(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        log_file.write(line + "\n")

    mixture_config = preset(args.mixture, **_parse_overrides(args.overrides))
    t_load = time.time()
    photos = PhotoBank.load(args.dataset, args.data_root, "train", download=args.download, limit=args.photo_limit)
    log(f"loaded {len(photos)} training photos from {photos.source} in {time.time() - t_load:.1f}s")
    mixture = Mixture(photos, mixture_config, seed=args.seed)

    model = create_model(args.seed)
    # channels_last convolutions: 28% faster on CPU here, same maths (save_weights stores contiguous tensors).
    model.visual.to(memory_format=torch.channels_last)
    model.train()
    tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)
    optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=args.pct_start)

    recipe: dict[str, Any] = {
        "recipe_version": RECIPE_VERSION,
        "open_clip_name": OPEN_CLIP_NAME,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "optimizer": {"name": "AdamW", "lr": args.lr, "betas": [0.9, 0.98], "eps": 1e-6,
                      "weight_decay": args.weight_decay, "grad_clip": args.grad_clip,
                      "schedule": "OneCycleLR (cosine)", "pct_start": args.pct_start},
        "loss": "multi-positive symmetric InfoNCE over deduplicated captions, positives = same caption key",
        "data": {"dataset": args.dataset, "split": "train", "photos": len(photos), "photo_limit": args.photo_limit},
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

    # CPU seconds of the training process (all its threads; not the render worker): unlike wall time,
    # hardly inflated by other jobs on a shared machine.
    start_step, elapsed_before, cpu_before = 0, 0.0, 0.0
    checkpoint_path = out / "checkpoint.pt"
    if checkpoint_path.exists() and not args.no_resume:
        state = torch.load(checkpoint_path, weights_only=True)
        if state["recipe"]["mixture"] != recipe["mixture"] or state["recipe"]["seed"] != args.seed or state["recipe"]["steps"] != args.steps:
            raise SystemExit(f"{checkpoint_path} belongs to another recipe: use another --out or --no-resume")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step, elapsed_before, cpu_before = state["step"], state["elapsed_s"], state.get("cpu_s", 0.0)
        log(f"resumed from {checkpoint_path} at step {start_step}")

    loader = torch.utils.data.DataLoader(
        _Batches(mixture, args.batch_size, args.steps),
        batch_size=None,
        sampler=range(start_step, args.steps),
        num_workers=args.workers,
        worker_init_fn=_worker_init if args.workers else None,
        prefetch_factor=2 if args.workers else None,
        persistent_workers=False,
    )
    log(f"training {OPEN_CLIP_NAME} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters) "
        f"for {args.steps} steps of {args.batch_size}, seed {args.seed}, from step {start_step}")

    max_scale = math.log(100.0)
    losses: deque[float] = deque(maxlen=args.log_every)
    evals: list[dict[str, Any]] = []
    t0, c0 = time.time(), time.process_time()
    t_last, last_step = t0, start_step
    step = start_step
    for step, batch in enumerate(loader, start=start_step):
        unique, positives = dedupe_captions(batch["captions"], batch["keys"])
        images = _normalise(batch["images"], model).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            image_features = model.encode_image(images, normalize=True)
        image_features = image_features.float()
        text_features = model.encode_text(tokenizer(unique), normalize=True)
        loss = multi_positive_contrastive_loss(image_features, text_features, positives, model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_scale)
        losses.append(loss.item())
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            now = time.time()
            per_step = (now - t_last) / max(1, done - last_step)
            t_last, last_step = now, done
            log(f"step {done}/{args.steps} loss {np.mean(losses):.4f} lr {scheduler.get_last_lr()[0]:.2e} "
                f"scale {model.logit_scale.exp().item():.1f} texts {len(unique)} {per_step:.2f}s/step "
                f"elapsed {elapsed_before + now - t0:.0f}s eta {per_step * (args.steps - done):.0f}s")
        if args.eval_every and done % args.eval_every == 0 and done != args.steps:
            acc = quick_zeroshot_accuracy(model)
            evals.append({"step": done, "clean_zeroshot_sample500": acc})
            log(f"step {done}: clean zero-shot accuracy on 500 cifar10-sample images {acc:.3f}")
        stopping = args.stop_after is not None and done >= args.stop_after and done != args.steps
        if (done % args.checkpoint_every == 0 or stopping) and done != args.steps:
            tmp = checkpoint_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": done, "recipe": recipe,
                        "elapsed_s": elapsed_before + time.time() - t0,
                        "cpu_s": cpu_before + time.process_time() - c0}, tmp)
            os.replace(tmp, checkpoint_path)
        if stopping:
            log(f"stopped at step {done} (--stop-after); run the same command again to continue")
            log_file.close()
            return {**recipe, "stopped_at": done}

    wall = elapsed_before + time.time() - t0
    cpu = cpu_before + time.process_time() - c0
    model.eval()
    acc = quick_zeroshot_accuracy(model)
    evals.append({"step": args.steps, "clean_zeroshot_sample500": acc})
    log(f"finished in {wall:.0f}s ({wall / 60:.1f} min, {cpu / 60:.1f} CPU-min); clean zero-shot accuracy on 500 cifar10-sample images {acc:.3f}")
    recipe.update({"train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1), "final_loss": float(np.mean(losses)) if losses else None,
                   "quick_evals": evals, "precision_saved": "fp32" if args.fp32 else "fp16"})
    weights = out / "toyclip.safetensors"
    recipe["weights_sha256"], recipe["tensors_sha256"] = save_weights(
        model, weights, {k: v for k, v in recipe.items() if k != "quick_evals"}, args.fp32)
    _write_json(out / "recipe.json", recipe)
    log(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {out / 'recipe.json'}")
    log_file.close()
    return recipe


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset == "cifar10-jpeg" and not args.data_root:
        raise SystemExit("--data-root is required: the cifar10-jpeg folder that holds train/")
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
