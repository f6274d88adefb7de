"""Benchmark: typobench side by side with the tools a user would otherwise run, in one process.

On the same model, the same preprocessed images, the same batch size and the same torch threads, timed
interleaved (so both sides see the same machine load):

* zero-shot: clip_benchmark's ``zero_shot_classifier`` + ``run_classification`` against typobench's
  ``zeroshot_class_embeddings`` + the harness's ``predict_stages()`` (a ``CleanStage``, predictions saved in the
  run's store, as ``typobench run`` does). Both accuracies are printed and must be equal.
* PGD, L-inf and L2: torchattacks' ``PGD`` / ``PGDL2`` (plus the one forward a user needs to score the
  adversarial images) against ``typobench.adversarial.pgd.pgd`` (whose last of S+1 forwards scores them), on
  the same ``ImageClassifier``. Adversarial accuracies are printed and must be equal.

Ratios are typobench / peer throughput: >= 1.0 means typobench is at least as fast. The peers are
installed by the ``bench`` extra (see benchmarks/README.md for the exact line); typobench never needs them.

    python benchmarks/peers.py                       # toyclip, 1,000 cifar10-sample images, batch 64
    python benchmarks/peers.py --model tiny-rn --images 256 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from typobench.core.timing import contention_note, cpus, loadavg, rates, ratio, timed_interleaved

TARGET = 1.0
PEERS_MISSING = ("the peers are not installed: pip install -e '.[bench]' && pip install --no-deps "
                 "clip_benchmark==1.6.2 torchattacks==3.5.1 (see benchmarks/README.md)")


def fraction(text: str) -> float:
    """A float, or a fraction such as ``2/255``."""
    numerator, _, denominator = text.partition("/")
    try:
        return float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from exc


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toyclip", help="built-in or open_clip name (tiny-rn for a quick run)")
    parser.add_argument("--pretrained", default=None, help="open_clip tag or local checkpoint")
    parser.add_argument("--dataset", default="cifar10-sample")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=1000, help="images for zero-shot (PGD attacks one batch)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eps", type=fraction, default=2 / 255, help="L-inf radius")
    parser.add_argument("--step-size", type=fraction, default=0.5 / 255, help="L-inf step")
    parser.add_argument("--l2-eps", type=fraction, default=0.5)
    parser.add_argument("--l2-step-size", type=fraction, default=0.125)
    parser.add_argument("--random-start", action="store_true",
                        help="start PGD at a random point (the two draw different points: accuracies then differ)")
    parser.add_argument("--only", choices=("zeroshot", "pgd"), default=None, help="run one comparison only")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "repeats", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def peer_templates(templates: Sequence[str]) -> list[str]:
    """typobench's templates (``{}`` for the class name) in clip_benchmark's form (``{c}``)."""
    return [template.replace("{}", "{c}") for template in templates]


def verdict(value: float, what: str, target: float = TARGET) -> str:
    mark = "MET" if value >= target else "MISSED"
    return f"{mark}: {what} typobench/peer throughput {value:.3f} (target >= {target:.2f})"


def equal_verdict(ours: int, theirs: int, n: int) -> str:
    """Both sides' correct predictions out of ``n``: equal to the sample, or not."""
    return (f"{'EQUAL' if ours == theirs else 'DIFFERENT'}: typobench {ours}/{n} = {ours / n:.4f}, "
            f"peer {theirs}/{n} = {theirs / n:.4f}")


class Autocast(nn.Module):
    """The classifier under the run's precision with float32 logits: what typobench's stages attack, and what
    the peer gets too, so both attack exactly the same callable."""

    def __init__(self, classifier: nn.Module, runtime):
        super().__init__()
        self.classifier, self.runtime = classifier, runtime

    def forward(self, pixels: Tensor) -> Tensor:
        with self.runtime.autocast():
            return self.classifier(pixels).float()


@dataclass
class Setup:
    """What both sides share: model, runtime, [N,3,H,W] pixels in [0,1], [N] labels, the harness session."""

    args: argparse.Namespace
    loaded: object
    runtime: object
    session: object
    pixels: Tensor
    labels: Tensor
    workdir: Path


def setup(args: argparse.Namespace, workdir: Path) -> Setup:
    from typobench.core.runtime import Runtime
    from typobench.data import load_dataset, stack_images
    from typobench.harness.config import RunConfig, limit_dataset
    from typobench.harness.session import Session
    from typobench.models import load_model

    runtime = Runtime.create(args.device, args.precision)
    loaded = load_model(args.model, args.pretrained, device=runtime.device, seed=args.seed)
    source = load_dataset(args.dataset, root=args.data_root, split=args.split, transform=loaded.pixel_transform())
    source = limit_dataset(source, args.images, args.seed)
    pixels, _ = stack_images(source)  # decoded once: warm data for both sides
    memory = in_memory(source, pixels)
    config = RunConfig(model=args.model, pretrained=args.pretrained, dataset=args.dataset, head="zeroshot",
                       precision=args.precision, seed=args.seed, cache_dir=str(workdir / "cache"))
    session = Session.of(config, runtime, loaded, memory)
    return Setup(args, loaded, runtime, session, pixels, torch.tensor(memory.labels), workdir)


def in_memory(source, pixels: Tensor):
    """``source`` with its images replaced by the preprocessed ``pixels`` [N,3,H,W]."""
    from typobench.data import ImageDataset

    return ImageDataset(name=source.name, split=source.split, classnames=source.classnames,
                        templates=source.templates, labels=source.labels, sample_ids=source.sample_ids,
                        loader=pixels.__getitem__, transform=_identity, text_targets=source.text_targets)


def _identity(x: Tensor) -> Tensor:
    return x


class NormalisedPixels(torch.utils.data.Dataset):
    """The peer's data set: item i is (Normalize(pixels[i]), label), as the last step of an open_clip
    preprocess does per image; typobench normalises per batch inside its classifier instead."""

    def __init__(self, pixels: Tensor, labels: Tensor, mean: Sequence[float], std: Sequence[float]):
        from torchvision.transforms import Normalize

        self.pixels, self.labels, self.normalize = pixels, labels, Normalize(mean, std)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.normalize(self.pixels[index]), self.labels[index]


def zeroshot_fns(s: Setup) -> tuple[dict[str, Callable[[], object]], Callable[[], tuple[int, int]]]:
    """The four timed calls (head and loop, each side) and a function giving both sides' correct counts."""
    from clip_benchmark.metrics.zeroshot_classification import run_classification, zero_shot_classifier
    from torch.utils.data import DataLoader

    from typobench.harness.evaluation import predict_stages
    from typobench.harness.resume import BatchStore
    from typobench.heads.zeroshot import zeroshot_class_embeddings
    from typobench.stages.base import CleanStage

    data, model, device = s.session.data, s.loaded.model, s.runtime.device
    amp = s.args.precision != "fp32"  # clip_benchmark autocasts to the device's default dtype (bf16 on CPU)
    loader = DataLoader(NormalisedPixels(s.pixels, s.labels, s.loaded.mean, s.loaded.std),
                        batch_size=s.args.batch_size)
    templates = peer_templates(data.templates)
    last: dict[str, object] = {}

    def ours_head() -> object:
        return zeroshot_class_embeddings(model, s.loaded.tokenizer, data.classnames, data.templates)

    def ours_loop() -> object:
        store = BatchStore(s.workdir / f"run-{len(list(s.workdir.glob('run-*')))}", "peers")
        last["ours"] = predict_stages(data, [CleanStage()], s.session.context, store, batch_size=s.args.batch_size,
                                progress=False)
        return last["ours"]

    def peer_head() -> object:
        last["weights"] = zero_shot_classifier(model, s.loaded.tokenizer, data.classnames, templates, device.type, amp)
        return last["weights"]

    def peer_loop() -> object:
        last["peer"] = run_classification(model, last["weights"], loader, device.type, amp)
        return last["peer"]

    def correct() -> tuple[int, int]:
        ours = last["ours"]
        logits, target = last["peer"]
        # Not clip_benchmark's accuracy(): under numpy 2 its float() of a 1-element array raises.
        return int((ours["pred"] == ours["label"]).sum()), int((logits.argmax(1) == target).sum())

    fns = {"typobench head": ours_head, "clip_benchmark head": peer_head,
           "typobench predict_stages()": ours_loop, "clip_benchmark run_classification": peer_loop}
    return fns, correct


def pgd_fns(s: Setup, norm: str, classifier: nn.Module | None = None
            ) -> tuple[dict[str, Callable[[], object]], Callable[[], tuple[int, int]]]:
    """typobench's ``pgd`` and torchattacks' attack + scoring forward on one batch of the run's classifier
    (or ``classifier``); and both sides' counts of images still classified correctly."""
    import torchattacks

    from typobench.adversarial.pgd import PGDConfig, pgd

    args, device = s.args, s.runtime.device
    model = Autocast(classifier or s.session.classifier, s.runtime).eval()
    images, labels = s.pixels[: args.batch_size].to(device), s.labels[: args.batch_size].to(device)
    eps, step = (args.eps, args.step_size) if norm == "linf" else (args.l2_eps, args.l2_step_size)
    cfg = PGDConfig(eps=eps, step_size=step, steps=args.steps, norm=norm, random_start=args.random_start)
    kind = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    attack = kind(model, eps=eps, alpha=step, steps=args.steps, random_start=args.random_start)
    last: dict[str, Tensor] = {}

    def ours() -> object:
        generator = torch.Generator(device=device).manual_seed(args.seed)
        last["ours"] = pgd(model, images, labels, cfg, generator=generator).success
        return last["ours"]

    def peer() -> object:
        adv = attack(images, labels)
        with torch.no_grad():  # the forward that tells a torchattacks user which attacks succeeded
            last["peer"] = model(adv).argmax(dim=1) != labels
        return last["peer"]

    def correct() -> tuple[int, int]:
        return int((~last["ours"]).sum()), int((~last["peer"]).sum())

    return {f"typobench pgd() {norm}": ours, f"torchattacks {kind.__name__} + score": peer}, correct


class NearFree(nn.Module):
    """A classifier that costs almost nothing ([N,3,H,W] -> channel means -> [N,C] logits): what is left of an
    attack's time with it is the attack's own arithmetic and bookkeeping."""

    def __init__(self, classes: int):
        super().__init__()
        self.linear = nn.Linear(3, classes)

    def forward(self, pixels: Tensor) -> Tensor:
        return self.linear(pixels.mean(dim=(2, 3)))


def quiet(fns: dict[str, Callable[[], object]]) -> dict[str, Callable[[], object]]:
    """``fns`` with stderr captured: the peers draw tqdm bars (their real, small cost) that would break the table."""

    def silenced(fn: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            with contextlib.redirect_stderr(io.StringIO()):
                return fn()
        return call

    return {name: silenced(fn) for name, fn in fns.items()}


def report(title: str, fns: dict, times: dict[str, list[float]], items: int, unit: str) -> list[float]:
    """Print one table of (typobench, peer) pairs; returns each pair's median throughput ratio."""
    names = list(fns)
    print(f"\n== {title} ==")
    print(f"{'path':<36} {'median ' + unit:>18} {'best':>10} {'ms/call':>9}")
    for name in names:
        median, best = rates(times[name], items)
        print(f"{name:<36} {median:>18,.1f} {best:>10,.1f} {1e3 * items / median:>9.1f}")
    pairs = []
    for ours, theirs in zip(names[::2], names[1::2]):
        pairs.append(ratio(rates(times[ours], items)[0], rates(times[theirs], items)[0]))
        print(f"ratio {ours} / {theirs}: {pairs[-1]:.3f} (best: "
              f"{ratio(rates(times[ours], items)[1], rates(times[theirs], items)[1]):.3f})")
    return pairs


def run_zeroshot(s: Setup) -> None:
    fns, correct = zeroshot_fns(s)
    times = timed_interleaved(quiet(fns), s.args.repeats, s.runtime.device)
    n, data = len(s.pixels), s.session.data
    heads, loops = (dict(list(fns.items())[:2]), dict(list(fns.items())[2:]))
    prompts = len(data.classnames) * len(data.templates)
    (head_ratio,) = report(f"zero-shot head: {len(data.classnames)} classes x {len(data.templates)} templates",
                           heads, times, prompts, "prompts/s")
    (loop_ratio,) = report(f"zero-shot evaluation: {n} images", loops, times, n, "img/s")
    total_ours = sum(min(times[k]) for k in ("typobench head", "typobench predict_stages()"))
    total_peer = sum(min(times[k]) for k in ("clip_benchmark head", "clip_benchmark run_classification"))
    print(f"head + loop, best of each: typobench {total_ours:.3f} s, clip_benchmark {total_peer:.3f} s")
    print("accuracy " + equal_verdict(*correct(), n))
    print("verdict (loop, medians): " + verdict(loop_ratio, "zero-shot evaluation"))
    print("verdict (head, medians): " + verdict(head_ratio, "class embeddings"))
    print("verdict (head + loop, bests): " + verdict(total_peer / total_ours, "zero-shot total"))


def run_pgd(s: Setup) -> None:
    n = min(s.args.batch_size, len(s.pixels))
    for norm in ("linf", "l2"):
        fns, correct = pgd_fns(s, norm)
        times = timed_interleaved(quiet(fns), s.args.repeats, s.runtime.device)
        eps = s.args.eps if norm == "linf" else s.args.l2_eps
        (value,) = report(f"PGD {norm} eps {eps:.5f}, {s.args.steps} steps, one batch of {n}, "
                          f"random start {s.args.random_start}", fns, times, n * s.args.steps, "img*steps/s")
        print("adversarial accuracy " + equal_verdict(*correct(), n))
        print("verdict (medians): " + verdict(value, f"PGD {norm}"))
        own = {name: statistics.median(t) for name, t in timed_interleaved(
            quiet(pgd_fns(s, norm, NearFree(len(s.session.data.classnames)))[0]), 3 * s.args.repeats,
            s.runtime.device).items()}
        print("each side's own work (the same attack on a near-free model, a mean and a 3 x C matmul): "
              + ", ".join(f"{name} {1e3 * t:.1f} ms" for name, t in own.items()))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import clip_benchmark.metrics.zeroshot_classification  # noqa: F401
        import torchattacks  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"{exc}: {PEERS_MISSING}") from exc
    with tempfile.TemporaryDirectory(prefix="typobench-peers-") as tmp:
        s = setup(args, Path(tmp))
        print(f"model={args.model} device={s.runtime.device} precision={args.precision} torch={torch.__version__} "
              f"threads={torch.get_num_threads()} cpus={cpus()} batch={args.batch_size} repeats={args.repeats}")
        load_before = loadavg()
        print(f"load average (1/5/15 min) before: {load_before}")
        if args.only in (None, "zeroshot"):
            run_zeroshot(s)
        if args.only in (None, "pgd"):
            run_pgd(s)
        print(f"\nload average (1/5/15 min) after: {loadavg()}")
        if note := contention_note(load_before, torch.get_num_threads(), cpus()):
            print(note)


if __name__ == "__main__":
    main(sys.argv[1:])
