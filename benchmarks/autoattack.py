"""Benchmark: typobench's APGD and AutoAttack cascade side by side with pyautoattack, in one process.

On the same model (the harness's zero-shot classifier under the run's precision), the same preprocessed
images and the same torch threads:

* ``apgd``: APGD-CE, ``--steps`` iterations, one restart, on one batch: typobench's ``apgd`` against
  pyautoattack's ``APGDAttack``, timed interleaved; robust accuracies of both are printed. Ratio =
  typobench / pyautoattack throughput (>= 1.0: typobench at least as fast).
* ``cascade``: the ``autoattack-linf`` suite's stage at ``--eps`` (APGD-CE, APGD-T, FAB-T, Square, each on
  the samples still correct) against pyautoattack's ``AutoAttack(version="standard")``, and PGD-10 (the old
  default attack) on ``--images`` images: each robust accuracy with its 95% Wilson interval, each wall time,
  and the cascade's *bound*: the forward/backward passes it spent on surviving samples times the measured
  cost of one image's forward+backward pass (a bare loop on the same model), so ``time / bound`` is the
  cascade's overhead over the model work it cannot avoid.

    python benchmarks/autoattack.py --only apgd --images 64 --repeats 3
    python benchmarks/autoattack.py --only cascade --images 500            # toyclip, cifar10-sample, 2/255
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from peers import Autocast, fraction, report, setup
from typobench.core.metrics import wilson_interval
from typobench.core.timing import contention_note, cpus, loadavg, timed_interleaved


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toyclip")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--dataset", default="cifar10-sample")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=500, help="images for the cascade (APGD: one batch)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="APGD iterations")
    parser.add_argument("--eps", type=fraction, default=2 / 255, help="L-inf radius")
    parser.add_argument("--only", choices=("apgd", "cascade"), default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def interval(correct: int, n: int) -> str:
    lo, hi = wilson_interval(correct, n)
    return f"{100 * correct / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({correct}/{n})"


def run_apgd(s) -> None:
    from pyautoattack.autopgd_base import APGDAttack

    from typobench.adversarial.apgd import APGDConfig, apgd

    args, device = s.args, s.runtime.device
    model = Autocast(s.session.classifier, s.runtime).eval()
    images, labels = s.pixels[: args.batch_size].to(device), s.labels[: args.batch_size].to(device)
    cfg = APGDConfig(eps=args.eps, steps=args.steps, loss="ce")
    peer = APGDAttack(model, norm="Linf", eps=args.eps, n_iter=args.steps, n_restarts=1, loss="ce",
                      seed=args.seed, device=device)
    last: dict[str, torch.Tensor] = {}

    def ours() -> object:
        generator = torch.Generator(device=device).manual_seed(args.seed)
        last["ours"] = apgd(model, images, labels, cfg, generator=generator).success
        return last["ours"]

    def theirs() -> object:
        adv = peer.perturb(images, labels)
        with torch.no_grad():
            last["peer"] = model(adv).argmax(1) != labels
        return last["peer"]

    fns = {"typobench apgd() ce": ours, "pyautoattack APGDAttack ce": theirs}
    times = timed_interleaved(fns, args.repeats, device)
    n = len(images)
    (value,) = report(f"APGD-CE L-inf eps {args.eps:.5f}, {args.steps} iterations, one batch of {n}", fns, times,
                      n * args.steps, "img*steps/s")
    print(f"robust accuracy: typobench {interval(int((~last['ours']).sum()), n)}, "
          f"pyautoattack {interval(int((~last['peer']).sum()), n)}")
    print(f"verdict (medians): {'MET' if value >= 1.0 else 'MISSED'}: typobench/pyautoattack throughput "
          f"{value:.3f} (target >= 1.00)")


def pass_seconds(model, images: torch.Tensor, labels: torch.Tensor, repeats: int = 3) -> float:
    """Seconds of one image's forward + backward pass (input gradient), from a bare loop over one batch."""
    best = float("inf")
    for _ in range(repeats):
        x = images.clone().requires_grad_(True)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        torch.autograd.grad(loss, x)
        best = min(best, time.perf_counter() - start)
    return best / len(images)


def run_cascade(s) -> None:
    from pyautoattack import AutoAttack

    from typobench.adversarial.cascade import breakdown, worst_case
    from typobench.adversarial.pgd import PGDConfig, pgd
    from typobench.suites import read_suite

    args, device = s.args, s.runtime.device
    model = Autocast(s.session.classifier, s.runtime).eval()
    images, labels = s.pixels.to(device), s.labels.to(device)
    n = len(images)
    tag = f"{round(args.eps * 255)}"
    stage = next(st for st in read_suite("autoattack-linf").stages if st.name == f"autoattack-linf-{tag}")
    attacks = [(name, attack) for name, _, attack in stage.attacks]

    start = time.perf_counter()
    ours_success, passes = [], 0
    for i in range(0, n, args.batch_size):
        batch, y = images[i:i + args.batch_size], labels[i:i + args.batch_size]
        result = worst_case(model, batch, y, attacks,
                            generator_for=lambda name: torch.Generator(device=device).manual_seed(args.seed))
        ours_success.append(result.success)
        passes += int(result.queries.sum())
        counts = breakdown(result, [a for a, _ in attacks])
        print("  batch", i // args.batch_size, {k: v for k, v in counts.items() if v})
    ours_s = time.perf_counter() - start
    ours_correct = int((~torch.cat(ours_success)).sum())

    start = time.perf_counter()
    peer = AutoAttack(model, norm="Linf", eps=args.eps, version="standard", device=device, seed=args.seed)
    peer.verbose = False
    with contextlib.redirect_stdout(io.StringIO()):
        adv = peer.run_standard_evaluation(images, labels, batch_size=args.batch_size)
    adv = adv[0] if isinstance(adv, tuple) else adv  # pyautoattack 0.2 returns (images, state)
    peer_s = time.perf_counter() - start
    with torch.no_grad():
        peer_correct = int(sum(int((model(adv[i:i + args.batch_size]).argmax(1) == labels[i:i + args.batch_size]).sum())
                               for i in range(0, n, args.batch_size)))

    pgd_correct = 0
    cfg = PGDConfig(eps=args.eps, step_size=args.eps / 4, steps=10)
    for i in range(0, n, args.batch_size):
        generator = torch.Generator(device=device).manual_seed(args.seed)
        pgd_correct += int((~pgd(model, images[i:i + args.batch_size], labels[i:i + args.batch_size], cfg,
                                 generator=generator).success).sum())

    per_pass = pass_seconds(model, images[: args.batch_size], labels[: args.batch_size])
    print(f"\n== AutoAttack standard, L-inf eps {tag}/255, {n} images ==")
    print(f"typobench autoattack-linf-{tag}: {interval(ours_correct, n)} in {ours_s:.1f} s")
    print(f"pyautoattack standard:        {interval(peer_correct, n)} in {peer_s:.1f} s")
    print(f"PGD-10 (step eps/4):           {interval(pgd_correct, n)}")
    print(f"cascade passes on surviving samples: {passes:,} x {1e3 * per_pass:.2f} ms = bound {passes * per_pass:.1f} s; "
          f"time / bound {ours_s / (passes * per_pass):.2f}; typobench/pyautoattack speed {peer_s / ours_s:.2f}")
    lo, hi = wilson_interval(peer_correct, n)
    verdicts = [ours_correct <= pgd_correct, lo <= ours_correct / n <= hi]
    print(f"verdict: cascade <= PGD-10: {'MET' if verdicts[0] else 'MISSED'}; within pyautoattack's interval: "
          f"{'MET' if verdicts[1] else 'MISSED'}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import pyautoattack  # noqa: F401
    except ImportError:
        sys.exit("pyautoattack is not installed: pip install -e '.[dev]'")
    print(f"load {loadavg()} on {cpus()} cpus, torch threads {torch.get_num_threads()}")
    note = contention_note(loadavg(), torch.get_num_threads(), cpus())
    if note:
        print(note)
    with tempfile.TemporaryDirectory(prefix="typobench-bench-") as folder:
        s = setup(args, Path(folder))
        if args.only in (None, "apgd"):
            run_apgd(s)
        if args.only in (None, "cascade"):
            run_cascade(s)


if __name__ == "__main__":
    main()
