"""What every command line shares: argument types with ranges, output checks, one-line errors.

A command checks every flag and every output before any loading or training. A bad flag is an
argparse error (its type raises ArgumentTypeError); a bad output or another problem the user can
fix is a UsageError, printed by `fail` as one line `error: ...`; both exit with EXIT_USAGE.
"""
import argparse
import math
import os
import signal
import sys
from pathlib import Path

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


class UsageError(Exception):
    """A problem the user can fix: one line, exit EXIT_USAGE."""


def fail(message):
    """Print `error: message` (one line) on stderr; returns EXIT_USAGE for main to return."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


def interrupted(done=None):
    """Ctrl-C in a command: one line on stderr (what was written so far, or that nothing was
    finished), no traceback; returns EXIT_INTERRUPTED for main to return."""
    what = f"wrote {done} before stopping" if done else "nothing was finished"
    print(f"interrupted; {' '.join(str(what).split())}", file=sys.stderr)
    return EXIT_INTERRUPTED


def quiet_start():
    """Called first by a command run as a program: a Ctrl-C while its imports run is one line,
    exit EXIT_INTERRUPTED (os._exit: an exception raised inside a library's import would surface
    as that library's import error). main then installs its own handling."""
    def interrupted_while_starting(*_):
        sys.stderr.write("interrupted while starting; nothing was written\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, interrupted_while_starting)


def run(work, a, said):
    """work(a, written) -> exit code, with Ctrl-C turned into one line: work appends each output
    file to `written` as it finishes it; said(written) tells what was written."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C is KeyboardInterrupt again
    written = []
    try:
        return work(a, written)
    except KeyboardInterrupt:
        return interrupted(said(written) if written else None)


def int_at_least(minimum):
    """An argparse type: an int >= minimum."""
    return int_in(minimum, None)


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
    for other in list(inputs) + list(others):
        if same_file(path, other):
            raise UsageError(f"{path} would overwrite {other}, which this command also uses")
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


def _identity(path):
    """(st_dev, st_ino) of an existing file (links followed), None when there is none."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def same_file(a, b):
    """a and b name the same file: the same real path, or (both existing) the same file under
    two names (a hard link, a bind mount): writing one would overwrite the other."""
    if _same(a) == _same(b):
        return True
    ia = _identity(a)
    return ia is not None and ia == _identity(b)


def int_in(low, high):
    """An argparse type: an int in [low, high] (high None: no upper bound)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}" if high is None
                                             else f"must be in [{low}, {high}], got {value}")
        return value

    parse.__name__ = f"int >= {low}" if high is None else f"int in [{low}, {high}]"
    return parse


def file_name(text):
    """An argparse type: a path that names a file (checked at parse time): not empty, not '.',
    '..' or '/', not ending in a separator. Returns the text."""
    if not text or Path(text).name in ("", ".", "..") or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r} names no file; give a file name")
    return text


file_name.__name__ = "file name"


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
    for k, path in enumerate(paths):
        if any(same_file(path, earlier) for earlier in paths[:k]):
            raise UsageError(f"two outputs would be the same file {path}; give names that differ")
        check_output_file(path, inputs=inputs)
        if path.is_file():
            real = Path(_same(path))
            for folder in input_folders:
                if folder is not None and (Path(_same(folder)) in real.parents
                                           or _linked_into(path, folder)):
                    raise UsageError(f"{path} would overwrite a file of the input folder {folder}")
    return paths


def _linked_into(path, folder):
    """path is a hard link to a file under folder (looked for only when it has other names)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    if info.st_nlink < 2:
        return False
    for directory, _subdirs, files in os.walk(folder):
        for name in files:
            if _identity(os.path.join(directory, name)) == (info.st_dev, info.st_ino):
                return True
    return False


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a bad command line as one line `error: ... (see PROG --help)` on stderr,
    exit EXIT_USAGE, no usage block: the same form as every other error of the commands."""

    def error(self, message):
        self.exit(fail(f"{message} (see {self.prog} --help)"))
