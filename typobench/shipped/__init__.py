"""What typobench ships besides code: the attack suites, the leaderboards and data set manifests.

``suites``, ``leaderboards`` and ``datasets`` in this folder are relative symlinks to the checkout's top-level
``attacks/``, ``leaderboards/`` and ``datasets/``, the user-facing, version-controlled copies (one source of truth). Building a wheel
follows the links, so an installed package holds real copies (``pyproject.toml`` lists what is packaged).
Every reader finds them here, through ``importlib.resources``; nothing derives them from ``__file__``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from typobench.core.errors import UsageError

SUITES = "suites"
LEADERBOARDS = "leaderboards"
DATASETS = "datasets"
# The file at the top of a source checkout, next to attacks/ and leaderboards/ (absent from an installed package).
CHECKOUT_MARKER = "pyproject.toml"


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (:data:`SUITES`, :data:`LEADERBOARDS` or :data:`DATASETS`) of the imported typobench, links resolved
    (in a checkout: its top-level ``attacks/`` or ``leaderboards/``)."""
    resource = files(__name__) / name
    if not isinstance(resource, Path) or not resource.is_dir():
        # A zip import or a packaging mistake: the commands need real files (suites are read by path).
        raise UsageError(f"typobench's shipped {name} folder '{resource}' is missing or not on disk: "
                         "reinstall typobench from a wheel (pip install typobench-*.whl)")
    return resource.resolve()


def shipped_suites_dir() -> Path:
    """The attack suites shipped with typobench (the checkout's ``attacks/``)."""
    return shipped_dir(SUITES)


def shipped_leaderboards_dir() -> Path:
    """The leaderboards shipped with typobench (the checkout's ``leaderboards/``)."""
    return shipped_dir(LEADERBOARDS)


def shipped_datasets_dir() -> Path:
    """The data set manifests shipped with typobench (the checkout's ``datasets/``; ids and lists, no images)."""
    return shipped_dir(DATASETS)


def in_source_checkout(folder: Path) -> bool:
    """True when ``folder`` (links resolved) is a top-level folder of a source checkout.

    There it is the version-controlled copy, and writing to it is how a contributor updates it; the copy
    inside an installed package is read-only (writing there would edit site-packages).
    """
    return (folder.resolve().parent / CHECKOUT_MARKER).is_file()
