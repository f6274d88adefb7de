"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """Bad input from the user (a name, a path, a parameter).

    The message is one line that names the offending thing and says how to fix it.
    """


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
