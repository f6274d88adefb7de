"""Placeholder: being written now; replaced by the real command module."""


def register(subparsers) -> None:
    return None
