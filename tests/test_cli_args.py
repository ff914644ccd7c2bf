"""Every flag of every command refused at parse time with one line `error: ...` (exit 2), no
traceback and no file written. The bad values are derived from each command's own argparse
definitions, so a new flag with a cli type, choices or an output path is covered automatically."""
import importlib
import math
import os
import re

import pytest

from biaxial_cu import cli

COMMANDS = ("train", "generate", "evaluate", "inspect")
OUTPUT_DESTS = ("out", "json", "png", "tensorboard")  # options naming a file or folder the command writes
ERROR_LINE = re.compile(r"^error: \S")


def parser_of(command):
    return importlib.import_module(f"biaxial_cu.{command}").build_parser()


def closure(function):
    """The values a cli type closes over (minimum, low, high, low_open, ...)."""
    cells = function.__closure__ or ()
    return dict(zip(function.__code__.co_freevars, (c.cell_contents for c in cells)))


def bad_values(action):
    """[(value, why)] that the action's own definition must refuse."""
    kind = action.type
    name = getattr(kind, "__name__", "")
    values = []
    if action.choices is not None:
        values.append(("bogus-choice", "not a choice"))
    if name.startswith("int >= "):
        values += [(str(closure(kind)["low"] - 1), "below the minimum"), ("abc", "not a number"),
                   ("nan", "nan"), ("1.5", "fraction")]
    elif name.startswith("int in ["):
        c = closure(kind)
        values += [(str(c["low"] - 1), "below"), (str(c["high"] + 1), "above"), ("abc", "not a number")]
    elif name.startswith("number in ["):
        c = closure(kind)
        values += [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("abc", "not a number")]
        if math.isfinite(c["low"]):
            values.append((repr(c["low"] - 1), "below"))
            if c["low_open"]:
                values.append((repr(c["low"]), "the open low end"))
        if math.isfinite(c["high"]):
            values.append((repr(c["high"] + 1), "above"))
            if c["high_open"]:
                values.append((repr(c["high"]), "the open high end"))
    elif name == "folder":
        values += [("{file}", "a regular file, not a folder"), ("{missing}", "missing folder")]
    elif name == "file name":
        values += [("", "empty"), (".", "the current folder"), ("/", "the root"), ("..", "the parent"),
                   ("{tmp}/sub/", "a trailing separator")]
    elif name == "parse_sizes":
        values += [("0,3", "a zero size"), ("-1", "negative"), ("abc", "not sizes")]
    elif callable(kind) and kind not in (str, int, float):  # a type of its own: at least this
        values.append(("abc", "not what the type reads"))
    if action.dest in OUTPUT_DESTS:
        values.append(("{file}/inside.out", "inside a regular file"))
    return values


def base_argv(command, skip):
    """A command line good enough to reach the flag under test (a missing checkpoint is fine: every
    flag and output is checked before the checkpoint is read)."""
    argv = {"train": ["{music}", "--batches", "1", "--batch-size", "1", "--seq-len", "16",
                      "--t-layers", "4", "--p-layers", "3", "--backend", "numpy", "--no-progress",
                      "--out", "{tmp}/run"],
            "generate": ["{tmp}/missing.npz", "--steps", "4", "--silent-seed", "--out", "{tmp}/g.mid"],
            "evaluate": ["{tmp}/missing.npz", "{music}", "--generated", "{music}"],
            "inspect": ["{tmp}/missing.npz", "{tmp}/missing.mid", "--out", "{tmp}/ins"]}[command]
    out, i = [], 0
    while i < len(argv):  # drop the flag under test (and its value) from the base
        if argv[i] == skip:
            i += 1 if i + 1 == len(argv) or argv[i + 1].startswith("--") else 2
            continue
        out.append(argv[i])
        i += 1
    return out


def cases():
    table = []
    for command in COMMANDS:
        for action in parser_of(command)._actions:
            flag = action.option_strings[0] if action.option_strings else None
            for value, why in bad_values(action):
                table.append(pytest.param(command, flag, action.dest, value,
                                          id=f"{command} {flag or action.dest}={value} ({why})"))
    return table


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in fs + ds)


@pytest.mark.parametrize("command,flag,dest,value", cases())
def test_bad_values_are_refused_in_one_line_before_any_work(command, flag, dest, value, tmp_path,
                                                            monkeypatch, capsys):
    music = tmp_path / "music"
    music.mkdir()
    (tmp_path / "file").write_text("a regular file\n")
    places = {"tmp": tmp_path, "music": music, "file": tmp_path / "file", "missing": tmp_path / "nope"}
    argv = [a.format(**places) for a in base_argv(command, flag)]
    value = value.format(**places)
    if flag is None:  # a positional: replace the base's value for it
        positions = [a for a in parser_of(command)._actions if not a.option_strings]
        index = [a.dest for a in positions].index(dest)
        argv[index] = value
    else:
        argv += [flag, value]
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    main = importlib.import_module(f"biaxial_cu.{command}").main
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert code == cli.EXIT_USAGE, err
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]), err
    assert tree(tmp_path) == before  # nothing written


@pytest.mark.parametrize("command", COMMANDS)
def test_every_number_flag_has_a_range(command):
    """An int or float flag typed plainly (type=int) would take any value: each uses a cli type."""
    plain = [a.option_strings[0] for a in parser_of(command)._actions
             if a.option_strings and a.type in (int, float)]
    assert plain == []
