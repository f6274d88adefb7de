"""Options shared by every command that loads a model and a data set."""

from __future__ import annotations

import argparse

from typobench.defenses import list_defenses
from typobench.heads import HEAD_KINDS
from typobench.harness.config import DEFAULT_DATASET, DEFAULT_DEMO_LIMIT, DEFAULT_MODEL, DEFAULT_SUITE, RunConfig


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser, *, heads: bool = True, defense_help: str | None = None,
                      suite: str = DEFAULT_SUITE) -> None:
    """The model options; ``suite`` is this command's default suite (its help states it)."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=DEFAULT_MODEL,
                       help="built-in name, open_clip NAME or NAME:TAG (ViT-B-32:openai), or hf-hub:org/repo "
                            f"(default: {DEFAULT_MODEL}; see `typobench list models`)")
    model.add_argument("--pretrained", default=None,
                       help="open_clip pretrained tag or a local checkpoint (.safetensors/.pt) for --model NAME")
    model.add_argument("--vision-tower", default=None, metavar="PATH",
                       help="the image tower's weights alone (.safetensors/.pt, e.g. a FARE or TeCoA release), "
                            "loaded into the model's visual module; keys with or without a visual. prefix")
    if not heads:
        return
    model.add_argument("--head", choices=HEAD_KINDS, default="zeroshot",
                       help="zero-shot prompts or a logistic-regression linear probe on the train split")
    model.add_argument("--suite", default=suite,
                       help=f"attack suite: a name from `typobench list suites` or a .toml path "
                            f"(default: {suite}); 'none' for the clean stage only")
    model.add_argument("--probe-train-limit", type=positive_int, default=None,
                       help="train the linear probe on a stratified subset of this many train images")
    model.add_argument("--defense", dest="defenses", action="append", default=[], metavar="SPEC",
                       help=(defense_help or "a defense, part of the model under test (repeat: applied in order, "
                                             "before a suite's [defense] tables)")
                            + ": KIND:KEY=VALUE,KEY=VALUE with lists joined by '+'. "
                            + "; ".join(f"{d['kind']}: {d['summary']}" for d in list_defenses())
                            + ". PGD stages attack through the defenses (adaptive), or with attack_on = "
                              "\"undefended\" make the images without them (transfer)")


def add_data_options(parser: argparse.ArgumentParser, *, limit: int | None = None, demo_limit: bool = False) -> None:
    """The data options; ``limit`` is this command's default --limit, and ``demo_limit`` says that its handler
    evaluates DEFAULT_DEMO_LIMIT images of the bundled sample when no --limit is given (only ``run`` does):
    the help states exactly that, nothing the command does not do."""
    data = parser.add_argument_group("data")
    limit_default = "all" if limit is None else str(limit)
    if demo_limit:
        limit_default += f"; {DEFAULT_DEMO_LIMIT} for the bundled {DEFAULT_DATASET}, enough for a one-minute demo"
    data.add_argument("--dataset", default=DEFAULT_DATASET,
                      help=f"data set name (default: {DEFAULT_DATASET}, bundled; see `typobench list datasets`)")
    data.add_argument("--data-root", default=None, help="where the data set lives on disk")
    data.add_argument("--split", default="test", help="split to evaluate (default: test)")
    data.add_argument("--download", action="store_true", help="allow torchvision to download the data set (the entries `typobench list datasets` says can be)")
    data.add_argument("--classnames", dest="classnames_file", default=None,
                      help="text file with one class name per line (folder data sets)")
    data.add_argument("--limit", type=positive_int, default=limit,
                      help=f"evaluate a deterministic class-stratified subset of N images (default: {limit_default})")
    data.add_argument("--holdout", type=positive_int, default=None, metavar="N",
                      help="leave out the N images that --limit N would draw (the validation images a recipe, "
                           "units or a defense were chosen on) and evaluate the rest (or --limit of the rest)")


def add_runtime_options(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    runtime.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                         help="autocast precision (weights stay fp32)")
    runtime.add_argument("--batch-size", type=positive_int, default=64)
    if workers:  # commands that stream a data set
        runtime.add_argument("--workers", type=int, default=0, help="data loader worker processes")
        runtime.add_argument("--checkpoint-every", dest="checkpoint_seconds", type=float, default=15.0, metavar="SECONDS",
                             help="save finished batches at least this often, so an interrupted run resumes from there "
                                  "(default: 15)")
    if workers:
        runtime.add_argument("--attack-checks", type=int, default=64, metavar="N",
                             help="re-attack the first N samples with twice the iterations and restarts, run "
                                  "eps-0.5 PGD on them, and flag attacks that did not converge or met masked "
                                  "gradients (results.json's attack_checks; default: 64, 0: off)")
    if workers:
        runtime.add_argument("--legibility", action="store_true",
                             help="read each written text with an OCR model (rapidocr-onnxruntime, the ocr extra): "
                                  "columns ocr_text, ocr_legible and the accuracy on the legible samples (costs time)")
    runtime.add_argument("--seed", type=int, default=0, help="seed for subsets, placements, attacks, random models")
    runtime.add_argument("--cache-dir", default=None,
                         help="cache for zero-shot weights and probe features (default: $TYPOBENCH_CACHE "
                              "or ~/.cache/typobench)")


def add_model_data_options(parser: argparse.ArgumentParser, *, defense_help: str | None = None,
                           suite: str = DEFAULT_SUITE, limit: int | None = None, demo_limit: bool = False) -> None:
    """Every option of a run: model and head, data, runtime, with this command's defaults (see above)."""
    add_model_options(parser, defense_help=defense_help, suite=suite)
    add_data_options(parser, limit=limit, demo_limit=demo_limit)
    add_runtime_options(parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    fields = RunConfig.__dataclass_fields__
    values = {name: getattr(args, name) for name in fields if hasattr(args, name)}
    if values.get("suite") == "none":
        values["suite"] = None
    return RunConfig(**values)
