"""The commands of `shadematch --help`, listed in groups: argparse lists subcommands flat, and eighteen of them
flat hide the six an integrator needs at query time.

Each command declares its group where it is registered (``add_command``); the top-level help lists them by
group from those declarations (``command_listing``), so the query-time and the offline packages each keep
their own commands.
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

QUERY_TIME = "query time: answer photos with a bundle"
CATALOGUE = "catalogue: make or change a bundle"
MODELS = "models and training: the models a bundle carries"
#: Commands whose package is not installed (a base install without `export`).
NOT_INSTALLED = "offline stage, not installed: pip install 'shadematch[export]'"
#: Group order in the help; a command registered without a group (a plug-in's) comes last.
GROUPS = (QUERY_TIME, CATALOGUE, MODELS, NOT_INSTALLED)
OTHER = "other commands"


def add_command(commands: argparse._SubParsersAction, name: str, *, group: str, summary: str,
                **options: Any) -> argparse.ArgumentParser:
    """A subcommand with its group and one-line summary for the top-level help (kept in its defaults, where
    ``command_listing`` reads them); ``options`` go to ``add_parser`` (description, add_help...)."""
    parser = commands.add_parser(name, **options)
    parser.set_defaults(command_group=group, command_summary=summary)
    return parser


def command_listing(parsers: Mapping[str, argparse.ArgumentParser]) -> str:
    """The commands by group, each group under its one-line title, for the top-level help's epilog."""
    grouped: dict[str, list[str]] = {}
    for name, parser in parsers.items():
        grouped.setdefault(parser.get_default("command_group") or OTHER, []).append(name)
    width = max(map(len, parsers), default=0) + 2
    blocks = []
    for group in (*GROUPS, OTHER):
        names = grouped.get(group)
        if names:
            lines = [f"  {name:{width}}{parsers[name].get_default('command_summary') or ''}".rstrip() for name in names]
            blocks.append("\n".join([group, *lines]))
    return "\n\n".join(blocks)
