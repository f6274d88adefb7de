"""Subcommands. Each module has ``register(subparsers)`` that adds its parser and sets ``handler``."""

from typobench.commands import (
    benchmark_cmd,
    defend_cmd,
    defense_tools_cmd,
    heads_cmd,
    leaderboard_cmd,
    list_cmd,
    neurons_cmd,
    run_cmd,
    search_text_cmd,
    stroop_cmd,
    submit_cmd,
    sweep_cmd,
)

COMMANDS = [run_cmd, list_cmd, search_text_cmd, stroop_cmd, neurons_cmd, heads_cmd, submit_cmd, leaderboard_cmd, sweep_cmd,
            defend_cmd, benchmark_cmd, defense_tools_cmd]
