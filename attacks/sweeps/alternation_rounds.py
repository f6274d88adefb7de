"""Number of alternation rounds: does the last attack always win?

Fort 2021's alternation, extended to R rounds: a sticker with the true class name, then targeted
L-inf PGD towards a random wrong class, then a new sticker at a new position, then PGD towards the
same class, and so on. After a sticker the sticker "wins" an image if it is classified correctly;
after PGD the PGD wins if the image is classified as its target. One run scores every prefix, so
the table answers the question for every number of rounds up to R. Run from the project root:

    python attacks/sweeps/alternation_rounds.py [--model toyclip] [--rounds 3] [--limit 100]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

import typobench.api as tb
from _common import load, parser


def alternation_suite(rounds: int, eps: str, steps: int) -> str:
    lines = [
        'name = "alternation"',
        f'description = "{rounds} rounds of true-label sticker -> targeted L-inf PGD ({eps}, {steps} steps)."',
        'reference = "Fort 2021, Pixels still beat text"',
        "[defaults.style]",
        'font = "sans-bold"', "size_range = [0.14, 0.2]", 'fill = "black"', 'box = "white"', "padding = 0.15",
        "[defaults.placement]", 'policy = "random"',
        "[defaults.pgd]",
        f'eps = "{eps}"', 'step_size = "1/255"', f"steps = {steps}", 'norm = "linf"', "random_start = true",
        "[[stage]]", 'name = "clean"', 'kind = "clean"',
    ]
    source = "clean"
    for r in range(1, rounds + 1):
        target = "wrong-label" if r == 1 else "same-as:pgd-1"
        lines += ["[[stage]]", f'name = "sticker-{r}"', 'kind = "text"', f'source = "{source}"',
                  'words = "true-label"',
                  "[[stage]]", f'name = "pgd-{r}"', 'kind = "pgd"', f'source = "sticker-{r}"', f'target = "{target}"']
        source = f"pgd-{r}"
    return "\n".join(lines) + "\n"


def main() -> None:
    p = parser(__doc__.splitlines()[0], "alternation-rounds", limit=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--eps", default="4/255")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    model, data = load(args)
    suite = tb.suite_from_toml(alternation_suite(args.rounds, args.eps, args.steps), "alternation_rounds.py")
    result = tb.run_suite(model, data, suite, out=Path(args.out) / "run", batch_size=args.batch_size)
    pred = result.predictions.set_index(["stage", "sample_id"]).sort_index()
    target = pred.loc["pgd-1", "target"].astype(int)  # every PGD aims at pgd-1's class
    rows, won_so_far = [], None
    for step, stage in enumerate(s for s in result.stages.stage if s != "clean"):
        frame = pred.loc[stage]
        labels, preds = frame["label"].astype(int), frame["pred"].astype(int)
        attack = "sticker" if stage.startswith("sticker") else "pgd"
        won = preds == labels if attack == "sticker" else preds == target
        won_so_far = won if won_so_far is None else won_so_far & won
        rows.append({"step": step + 1, "round": int(stage.split("-")[1]), "stage": stage,
                     "accuracy": (preds == labels).mean(), "predicts_pgd_target": (preds == target).mean(),
                     "last_attack_wins": won.mean(), "last_attack_won_every_step_so_far": won_so_far.mean()})
    table = pd.DataFrame(rows)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(args.out) / "alternation.csv", index=False)
    shown = table.copy()
    for column in ("accuracy", "predicts_pgd_target", "last_attack_wins", "last_attack_won_every_step_so_far"):
        shown[column] = (100 * shown[column]).round(1)
    clean = result.stages.set_index("stage").loc["clean", "accuracy"]
    print(f"clean accuracy {100 * clean:.1f}%; {len(data)} images; percentages:")
    print(shown.to_string(index=False))
    always = table.last_attack_wins.min()
    print(f"does the last attack always win? {'yes' if always == 1 else 'no'}: at its worst step it wins on "
          f"{100 * always:.1f}% of images; {100 * table.last_attack_won_every_step_so_far.iloc[-1]:.1f}% of images "
          f"went to the last attack at every one of the {len(table)} steps")

    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(table) + 2), 3.9))
    ax.plot(table.step, 100 * table.accuracy, "o-", label="accuracy (true class)")
    ax.plot(table.step, 100 * table.predicts_pgd_target, "s-", color="tab:red", label="predicts the PGD target")
    ax.plot(table.step, 100 * table.last_attack_wins, "k:", label="last attack wins")
    ax.set_xticks(table.step)
    ax.set_xticklabels(table.stage, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{model.label} on {args.dataset} (n={len(data)}): sticker / PGD {args.eps} alternation",
                 fontsize=9)
    path = Path(args.out) / "alternation.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
