"""The command line's help is light: ``gesco --help``, ``--version`` and ``gesco <command> --help`` import no torch.

Each check runs in a fresh interpreter, since this test process has torch loaded already. Timing lives in
``benchmarks/cli_help.py``, not here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from gesco.cli.main import COMMANDS, build_parser

#: Modules that take seconds to import; none may load for a help text.
HEAVY = ("torch", "diffusers", "accelerate", "sionna")

#: Runs ``gesco ARGV...`` in-process with stdout captured and prints what happened as JSON.
_PROBE = f"""
import contextlib, io, json, sys
from gesco.cli.main import main
code = 0
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        code = main(sys.argv[1:])
    except SystemExit as stop:
        code = stop.code
heavy = [name for name in {HEAVY!r} if name in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy, "out": out.getvalue()}}))
"""


def _probe(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []], ids=["help", "version", "bare"])
def test_top_level_help_and_version_import_no_heavy_module(argv):
    result = _probe(*argv)
    assert result["heavy"] == []
    assert result["code"] in (0, 2)
    if argv != ["--version"]:
        assert all(name in result["out"] for name in COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_help_imports_no_heavy_module(command):
    result = _probe(command, "--help")
    assert result["code"] == 0 and "usage: gesco" in result["out"]
    assert result["heavy"] == [], f"gesco {command} --help imported {result['heavy']}"


def test_only_the_chosen_command_module_is_imported():
    script = (
        "import json, sys; from gesco.cli.main import build_parser; build_parser('convert-official'); "
        "print(json.dumps([m for m in sys.modules if m.startswith('gesco.cli.')]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout))
    assert "gesco.cli.convert" in loaded and not loaded & {"gesco.cli.demo", "gesco.cli.evaluate", "gesco.cli.sample"}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_listed_help_line_is_the_command_modules_own(command):
    module, help_line = COMMANDS[command]
    subparsers = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"gesco.cli.{module}").register(subparsers)
    (action,) = subparsers._choices_actions
    assert (action.dest, action.help) == (command, help_line)


@pytest.mark.parametrize("command", ["demo", "evaluate", "compare", "sample", "transmit"])
def test_every_sampling_command_has_the_fp32_switch(command):
    parser = build_parser(command)
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "--fp32" in subparsers.choices[command]._option_string_actions


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser("nope").parse_args(["nope"])
    assert stopped.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_the_light_constants_agree_with_the_library():
    from gesco import constants
    from gesco.evaluation.compare import METHOD_LABELS
    from gesco.evaluation.demo import DEMO_PSNRS
    from gesco.receiver.sampling import SAMPLERS

    assert constants.SAMPLERS == SAMPLERS
    assert constants.DEMO_PSNRS == DEMO_PSNRS
    assert constants.COMPARE_METHODS == tuple(METHOD_LABELS)
