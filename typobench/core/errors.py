"""Errors the CLI reports as one line: a user's mistake (``UsageError``, exit status 2), or a run whose state
is not what it must be (``IntegrityError``, exit status 1: never a result from incomplete data)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad input from the user (a name, a path, a parameter).

    The message is one line that names the offending thing and says how to fix it.
    """


class IntegrityError(RuntimeError):
    """Finished work on disk is inconsistent (a sample missing or present twice): nothing is written from it.

    The message is one line that names the folder and says what to do.
    """


def quoted(text: str, limit: int = 40) -> str:
    """``text`` quoted for a one-line message, cut to its first ``limit`` characters (then "…"): an error
    names the text, it does not repeat a paragraph of it."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def close_matches(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` candidates that look like ``word`` (case-insensitive)."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown_name_error(kind: str, name: str, known: Iterable[str], how_to_list: str) -> UsageError:
    """A ``UsageError`` for an unknown registry name, suggesting close matches."""
    known = list(known)
    hint = close_matches(name, known)
    suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
    return UsageError(f"unknown {kind} '{name}': {suggestion}see `{how_to_list}`")
