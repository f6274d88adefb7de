"""Subcommands. Each module has ``register(subparsers)`` that adds its parser and sets ``handler``."""

from . import list_cmd, run_cmd, search_text_cmd, stroop_cmd

COMMANDS = [run_cmd, list_cmd, search_text_cmd, stroop_cmd]
