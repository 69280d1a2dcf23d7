"""Every `selfcheckout` command, at every depth, answers --help with a description of what it is for."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from selfcheckout.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # list_commands/get_command, as click itself resolves a command line (the root loads its groups lazily)
    ctx = click.Context(group)
    found = [path]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = _commands(main)


def test_the_tree_has_the_commands_a_technician_needs() -> None:
    for expected in [
        ("gate", "run"),
        ("gate", "events"),
        ("gate", "check"),
        ("config", "check"),
        ("demo",),
        ("payments", "run"),
        ("payments", "bank"),
        ("phone", "tap"),
    ]:
        assert expected in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "selfcheckout")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    description = result.output.split("\n\n")[1].strip()
    assert description and not description.startswith("Options:"), f"{' '.join(path)} has no description"
