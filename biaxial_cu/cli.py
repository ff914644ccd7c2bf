"""What every command line shares: argument types with ranges, output checks, one-line errors.

A command checks every flag and every output before any loading or training. A bad flag is an
argparse error (its type raises ArgumentTypeError); a bad output or another problem the user can
fix is a UsageError, printed by `fail` as one line `error: ...`; both exit with EXIT_USAGE.
"""
import argparse
import math
import os
import sys
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem the user can fix: one line, exit EXIT_USAGE."""


def fail(message):
    """Print `error: message` (one line) on stderr; returns EXIT_USAGE for main to return."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


def int_at_least(minimum):
    """An argparse type: an int >= minimum."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def float_in(low, high, *, low_open=False, high_open=False):
    """An argparse type: a finite float in [low, high] (an end open where asked)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low) \
                or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low}, {high}"
                                             f"{')' if high_open else ']'}, got {text}")
        return value

    parse.__name__ = f"number in [{low}, {high}]"
    return parse


def check_output_file(path, *, inputs=(), others=()):
    """path can be written as a file: not a folder, its folder exists or can be made, and it is
    neither an input nor another output of the same command. Returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name")
    taken = {_same(p): p for p in list(inputs) + list(others)}
    if _same(path) in taken:
        raise UsageError(f"{path} would overwrite {taken[_same(path)]}, which this command also uses")
    _check_folder_writable(path.parent)
    return path


def check_output_folder(path):
    """path can be used as an output folder: an existing folder we can write in, or a path whose
    nearest existing parent is a writable folder. Returns it as a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a folder")
    _check_folder_writable(path)
    return path


def _check_folder_writable(folder):
    folder = Path(folder) if str(folder) else Path(".")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot make folder {folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {existing}")


def _same(path):
    return os.path.realpath(os.fspath(path))


def int_in(low, high):
    """An argparse type: an int in [low, high]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    parse.__name__ = f"int in [{low}, {high}]"
    return parse


def existing_folder(text):
    """An argparse type: a path that is an existing folder (checked at parse time)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {text}")
    return path


existing_folder.__name__ = "folder"


def check_outputs(paths, *, inputs=(), input_folders=()):
    """Every path of one command's outputs: check_output_file each, no two the same file, none an
    input (a file in inputs, or an existing file inside one of input_folders, which the command
    reads). Returns them as Paths; UsageError naming the first problem."""
    paths = [Path(p) for p in paths]
    seen = {}
    for path in paths:
        if _same(path) in seen:
            raise UsageError(f"two outputs would be the same file {path}; give names that differ")
        seen[_same(path)] = path
        check_output_file(path, inputs=inputs)
        if path.is_file():
            real = Path(_same(path))
            for folder in input_folders:
                if folder is not None and Path(_same(folder)) in real.parents:
                    raise UsageError(f"{path} would overwrite a file of the input folder {folder}")
    return paths


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a bad command line as one line `error: ... (see PROG --help)` on stderr,
    exit EXIT_USAGE, no usage block: the same form as every other error of the commands."""

    def error(self, message):
        self.exit(fail(f"{message} (see {self.prog} --help)"))
