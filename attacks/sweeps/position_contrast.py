"""Sticker position (centre, corner, random, random off-centre) and text colour contrast.

Position: the random-wrong-label attack at a fixed font size (0.2 of the side), placed at the centre,
in the top-left corner, uniformly at random, or at random but clear of the central half of the image
(where the object usually is). Contrast: a random wrong class name on a white sticker, in grey levels
from black (contrast 1) to near-white (contrast 0.13). Run from the project root:

    python attacks/sweeps/position_contrast.py [--model toyclip] [--limit 100]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import typobench.api as tb
from _common import load, parser, percent

POSITIONS = {
    "centre": {"placement.policy": "fixed", "placement.x": 0.5, "placement.y": 0.5},
    "corner": {"placement.policy": "fixed", "placement.x": 0.0, "placement.y": 0.0},
    "random": {"placement.policy": "random"},
    "off-centre": {"placement.policy": "random_off_center", "placement.center_fraction": 0.5},
}
GREYS = [0, 64, 128, 192, 222]  # text grey level on a white (255) sticker

CONTRAST_SUITE = """
name = "wrong-label-contrast"
description = "A random wrong class name on a white sticker; the text's grey level is varied."
reference = "typobench sweep"

[[stage]]
name = "clean"
kind = "clean"

[[stage]]
name = "wrong-label-sticker"
kind = "text"
words = "wrong-label"
target = "written"
style = { font = "sans-bold", size = 0.2, fill = "#000000", box = "white", padding = 0.15 }
placement = { policy = "random" }
"""


def main() -> None:
    args = parser(__doc__.splitlines()[0], "position-contrast", limit=100).parse_args()
    model, data = load(args)
    out = Path(args.out)

    base = tb.override(tb.load_suite("random-wrong-label"), {"text.size": 0.2})
    positions = tb.sweep(model, data, base, list(POSITIONS.values()), out=out / "position",
                         batch_size=args.batch_size)
    positions["position"] = positions.point_index.map(dict(enumerate(POSITIONS)))
    attack = positions[positions.stage == "random-wrong-label"]
    print("sticker position (random wrong class name, size 0.2 of the side):")
    print(percent(attack, ["targeted_success", "targeted_ci_lo", "targeted_ci_hi", "accuracy"])[
        ["position", "targeted_success", "targeted_ci_lo", "targeted_ci_hi", "accuracy", "n"]].to_string(index=False))

    grid = {"text.fill": [f"#{g:02x}{g:02x}{g:02x}" for g in GREYS]}
    contrast = tb.sweep(model, data, tb.suite_from_toml(CONTRAST_SUITE, "position_contrast.py"), grid,
                        out=out / "contrast", batch_size=args.batch_size)
    contrast["contrast"] = [round(1 - int(fill[1:3], 16) / 255, 2) for fill in contrast["text.fill"]]
    sticker = contrast[contrast.stage == "wrong-label-sticker"]
    print("text contrast on a white sticker (1 = black text, 0 = white):")
    print(percent(sticker, ["targeted_success", "targeted_ci_lo", "targeted_ci_hi", "accuracy"])[
        ["text.fill", "contrast", "targeted_success", "targeted_ci_lo", "targeted_ci_hi", "accuracy", "n"]
    ].to_string(index=False))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.9))
    y = 100 * attack.targeted_success
    left.bar(attack.position, y, yerr=[y - 100 * attack.targeted_ci_lo, 100 * attack.targeted_ci_hi - y],
             capsize=4, color="tab:red", alpha=0.8)
    left.set_ylabel("targeted success (%)")
    left.set_title("position of the written wrong class name", fontsize=9)
    frame = sticker.sort_values("contrast")
    y = 100 * frame.targeted_success
    right.errorbar(frame.contrast, y, yerr=[y - 100 * frame.targeted_ci_lo, 100 * frame.targeted_ci_hi - y],
                   fmt="o-", capsize=3, color="tab:red", label="targeted success")
    right.plot(frame.contrast, 100 * frame.accuracy, "s--", color="tab:blue", label="accuracy")
    right.set_xlabel("contrast of the text on its white sticker (1 - grey/255)")
    right.set_ylabel("%")
    right.legend(fontsize=8)
    right.set_title("text colour contrast", fontsize=9)
    for ax in (left, right):
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{model.label} on {args.dataset} (n={len(data)})", fontsize=9)
    path = out / "position_contrast.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
