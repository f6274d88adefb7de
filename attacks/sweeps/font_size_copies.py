"""Font size x number of copies -> targeted success against the fraction of pixels changed.

The random-wrong-label attack (Defense-Prefix protocol: a random wrong class name at random places,
colours from a palette) with a fixed font size instead of a range, written 1, 2 or 4 times. Goh et
al. 2021 report their attacks at about 7% of pixels changed: the plot puts every (size, copies) point
on that axis. Run from the project root:

    python attacks/sweeps/font_size_copies.py [--model toyclip] [--limit 200]
    python attacks/sweeps/font_size_copies.py --dataset cifar10-jpeg --data-root ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import typobench.api as tb
from _common import load, parser, percent

SIZES = [0.08, 0.12, 0.16, 0.24]  # font size as a fraction of the image side
COPIES = [1, 2, 4]


def main() -> None:
    args = parser(__doc__.splitlines()[0], "font-size-copies", limit=100).parse_args()
    model, data = load(args)
    suite = tb.load_suite("random-wrong-label")
    table = tb.sweep(model, data, suite, {"text.size": SIZES, "placement.copies": COPIES}, out=args.out,
                     batch_size=args.batch_size)
    attack = table[table.stage == "random-wrong-label"]
    shown = percent(attack, ["pixel_fraction_mean", "targeted_success", "targeted_ci_lo", "targeted_ci_hi",
                             "accuracy"])
    print(shown[["text.size", "placement.copies", "pixel_fraction_mean", "targeted_success", "targeted_ci_lo",
                 "targeted_ci_hi", "accuracy", "n"]].to_string(index=False))
    clean = table[table.stage == "clean"].accuracy.iloc[0]
    print(f"clean accuracy {100 * clean:.1f}%; percent of pixels changed, targeted success and accuracy in %")

    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for copies, frame in attack.groupby("placement.copies"):
        frame = frame.sort_values("pixel_fraction_mean")
        x, y = 100 * frame.pixel_fraction_mean, 100 * frame.targeted_success
        ax.errorbar(x, y, yerr=[y - 100 * frame.targeted_ci_lo, 100 * frame.targeted_ci_hi - y], fmt="o-",
                    capsize=3, label=f"{copies} cop{'y' if copies == 1 else 'ies'}")
        for xi, yi, size in zip(x, y, frame["text.size"]):
            ax.annotate(f"{size:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axvline(7, color="0.5", linestyle=":", label="7% of pixels (Goh et al. 2021)")
    ax.set_xlabel("pixels changed (%)")
    ax.set_ylabel("targeted success (%): prediction = written class")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{model.label} on {args.dataset} (n={len(data)}); labels: font size / image side", fontsize=9)
    path = Path(args.out) / "size_copies.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path} (and {Path(args.out) / 'sweep.csv'}, heatmap.png, plot-*.png)")


if __name__ == "__main__":
    main()
