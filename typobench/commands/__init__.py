"""Subcommands. Each module has ``register(subparsers)`` that adds its parser and sets ``handler``."""

from . import ablate_cmd, leaderboard_cmd, list_cmd, neurons_cmd, run_cmd, search_text_cmd, stroop_cmd, submit_cmd

COMMANDS = [run_cmd, list_cmd, search_text_cmd, stroop_cmd, neurons_cmd, submit_cmd, leaderboard_cmd, ablate_cmd]
