"""typobench's Python API: a random wrong class name, by font size and number of copies."""
import typobench.api as tb

model = tb.load_model("toyclip")                         # or "ViT-B-32:openai", "RN50:openai", a checkpoint
data = tb.load_data("cifar10-sample", model, limit=200)  # or "cifar10-jpeg", root="../shared/data/cifar10-jpeg"
suite = tb.load_suite("random-wrong-label")              # any suite name from `typobench list suites`, or a path
print(tb.parameter_paths(suite))                         # what can be varied: text.size, placement.copies, ...

# One evaluation with parameters changed: a DataFrame with one row per stage.
stages = tb.evaluate(model, data, tb.override(suite, {"text.size": 0.2, "text.fill": "white"}))
print(stages[["stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "targeted_success", "n"]])

# A grid (every combination): one row per grid point x stage, resumable in `out`, which also gets
# sweep.csv, sweep.parquet, plot-text.size.png, plot-placement.copies.png and heatmap.png.
table = tb.sweep(model, data, suite, {"text.size": [0.1, 0.2], "placement.copies": [1, 3]},
                 out="runs/api-example")
attack = table[table.stage == "random-wrong-label"]
print(attack.pivot_table(index="text.size", columns="placement.copies", values="targeted_success"))
print(attack[["text.size", "placement.copies", "pixel_fraction_mean", "targeted_success"]])
