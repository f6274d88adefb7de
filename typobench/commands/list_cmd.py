"""``typobench list models|datasets|suites|defenses``: what can be run."""

from __future__ import annotations

import argparse

import open_clip

from typobench.data import dataset_entry, list_datasets
from typobench.core.errors import UsageError, unknown_name_error
from typobench.defenses import list_defenses
from typobench.models import list_builtin_models
from typobench.models.builtin import get_builtin_model
from typobench.shipped import shipped_suites_dir
from typobench.suites import find_suites, read_suite
from typobench.suites.files import SHIPPED, SUITES_ENV

TOPICS = ("models", "datasets", "suites", "defenses")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list models, data sets, attack suites and defenses",
                                   description="List what typobench can run.")
    parser.add_argument("topic", choices=TOPICS)
    parser.add_argument("--name", default=None, help="only this model (shows its pretrained tags)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.topic == "models":
        print_models(args.name)
    elif args.topic == "datasets":
        print_datasets()
    elif args.topic == "defenses":
        print_defenses()
    else:
        print_suites()
    return 0


def print_models(only: str | None = None) -> None:
    builtins = list_builtin_models()
    tags: dict[str, list[str]] = {}
    for name, tag in open_clip.list_pretrained():
        tags.setdefault(name, []).append(tag)
    architectures = [m for m in open_clip.list_models() if not m.startswith("typobench-")]
    if only is not None:
        if only not in builtins and only not in architectures:
            raise unknown_name_error("model", only, builtins + architectures, "typobench list models")
        builtins = [only] if only in builtins else []
        architectures = [only] if only in architectures else []
    if builtins:
        print("built-in (offline):")
        for name in builtins:
            print(f"  {name:<24} {get_builtin_model(name).description}")
    if architectures:
        print("open_clip (NAME or NAME:TAG; tags download through open_clip's cache):")
        for name in architectures:
            print(f"  {name:<34} {', '.join(tags.get(name, [])) or '(no pretrained tags: random init)'}")


def print_suites() -> None:
    """Each suite with where it comes from: shipped, or the folder of ``$TYPOBENCH_SUITES_DIR`` that holds it."""
    suites = find_suites()
    print(f"attack suites (run one with `typobench run --suite NAME`; {SHIPPED}: {shipped_suites_dir()}; "
          f"add folders of your own with ${SUITES_ENV}):")
    for found in suites.values():
        origin = found.origin + (f" (shadows the {SHIPPED} one)" if found.shadows_shipped else "")
        try:
            suite = read_suite(str(found.path))
        except UsageError as exc:  # one broken suite of a user's folder must not hide the others
            print(f"  {found.name:<22} invalid   {origin}  {exc}")
            continue
        description = suite.description.splitlines()[0][:90] if suite.description else ""
        print(f"  {found.name:<22} {len(suite.stages):>2} stages  {origin}  {description}")


def print_defenses() -> None:
    print("defenses (typobench run --defense KIND:KEY=VALUE,...; repeatable, applied in order; lists joined with '+'):")
    for defense in list_defenses():
        print(f"  {defense['kind']:<12} {defense['summary']}")


def print_datasets() -> None:
    for name in list_datasets():
        entry = dataset_entry(name)
        print(f"  {name:<16} {entry.description}")
        print(f"  {'':<16} {entry.how_to_get}")
