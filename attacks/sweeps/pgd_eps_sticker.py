"""PGD eps sweep with and without a true-label sticker (Fort 2021): accuracy against eps, two curves.

Every grid point runs untargeted L-inf PGD (10 steps, step eps/4, random start) on the clean image and
on the same image carrying a sticker with its true class name; the sticker is identical at every eps
(its position depends only on the seed and the sample id). eps 0 is the no-attack reference. Run:

    python attacks/sweeps/pgd_eps_sticker.py [--model toyclip] [--limit 100] [--steps 10]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import typobench.api as tb
from _common import load, parser, percent

EPS_255 = [0, 0.5, 1, 2, 4, 8]

SUITE = """
name = "pgd-with-and-without-sticker"
description = "Untargeted L-inf PGD on clean images and on images with a true-label sticker."
reference = "Fort 2021, Pixels still beat text"

[defaults.pgd]
eps = "2/255"
step_size = "0.5/255"
steps = 10
norm = "linf"
random_start = true
loss = "ce"
target = "untargeted"

[[stage]]
name = "clean"
kind = "clean"

[[stage]]
name = "sticker"
kind = "text"
words = "true-label"
style = { font = "sans-bold", size_range = [0.14, 0.2], fill = "black", box = "white", padding = 0.15 }
placement = { policy = "random" }

[[stage]]
name = "pgd"
kind = "pgd"
source = "clean"

[[stage]]
name = "sticker+pgd"
kind = "pgd"
source = "sticker"
"""


def main() -> None:
    p = parser(__doc__.splitlines()[0], "pgd-eps-sticker", limit=100)
    p.add_argument("--steps", type=int, default=10, help="PGD steps (default 10)")
    args = p.parse_args()
    model, data = load(args)
    suite = tb.suite_from_toml(SUITE, "pgd_eps_sticker.py")
    # eps and step size change together (step = eps/4), so the points are a list, not a product.
    points = [{"pgd.eps": f"{e}/255", "pgd.step_size": f"{max(e, 0.5) / 4}/255", "pgd.steps": args.steps}
              for e in EPS_255]
    table = tb.sweep(model, data, suite, points, out=args.out, batch_size=args.batch_size)
    table["eps_255"] = (table["pgd.eps"] * 255).round(3)
    wide = table.pivot_table(index="eps_255", columns="stage", values="accuracy", sort=False)
    print("accuracy (%) by eps (x/255) and stage:")
    print((100 * wide[["clean", "sticker", "pgd", "sticker+pgd"]]).round(1).to_string())
    shown = percent(table[table.stage.isin(["pgd", "sticker+pgd"])],
                    ["accuracy", "accuracy_ci_lo", "accuracy_ci_hi"])
    print(shown[["eps_255", "stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n"]].to_string(index=False))

    fig, ax = plt.subplots(figsize=(6, 4))
    for stage, style in (("pgd", "o-"), ("sticker+pgd", "s-")):
        frame = table[table.stage == stage].sort_values("eps_255")
        y = 100 * frame.accuracy
        ax.errorbar(frame.eps_255, y, yerr=[y - 100 * frame.accuracy_ci_lo, 100 * frame.accuracy_ci_hi - y],
                    fmt=style, capsize=3, label=f"{'with' if 'sticker' in stage else 'without'} true-label sticker")
    ax.set_xscale("symlog", linthresh=0.5)
    ax.set_xticks(EPS_255)
    ax.set_xticklabels([f"{e:g}" for e in EPS_255])
    ax.set_xlabel("L-inf eps (x/255)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{model.label} on {args.dataset} (n={len(data)}), PGD {args.steps} steps", fontsize=9)
    path = Path(args.out) / "eps_sticker.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
