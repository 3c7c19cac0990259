# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running commands, reading inputs, reporting errors: shared by every tool entrypoint."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import typing as t

RUN_DIR_VARIABLE = 'PROVISION_RUN_DIR'
DEFAULT_RUN_DIR = '/run/provision'


class ToolError(Exception):
    """The step cannot complete; the message says what and how to fix it."""


def log(message: str) -> None:
    print(message, flush=True)


def run_dir() -> str:
    return os.environ.get(RUN_DIR_VARIABLE, DEFAULT_RUN_DIR)


def env(name: str, default: str | None = None) -> str:
    """A variable from recipe.env; a missing required one is an error naming the recipe field."""
    value = os.environ.get(name, default)
    if value is None or value == '':
        raise ToolError('%s is not set: the recipe lacks %s (recipe.env is written by provisioner run)' % (name, name.lower()))
    return value


def run(argv: t.Sequence[str], check: bool = True, capture: bool = False, input_data: bytes | None = None,
        env_extra: t.Mapping[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command, logging it; on failure raise ToolError with its output."""
    log('+ ' + shlex.join(argv))
    environment = dict(os.environ, **env_extra) if env_extra else None
    try:
        proc = subprocess.run(list(argv), input=input_data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
                              env=environment, check=False, timeout=timeout)
    except FileNotFoundError:
        raise ToolError('%s not found: the tool image lacks it' % argv[0]) from None
    except subprocess.TimeoutExpired:
        raise ToolError('%s did not finish within %s s' % (argv[0], timeout)) from None
    if not capture and proc.stdout:
        sys.stdout.write(proc.stdout.decode('utf-8', 'replace'))
        sys.stdout.flush()
    if check and proc.returncode != 0:
        output = proc.stdout if not capture else (proc.stderr or proc.stdout)
        raise ToolError('%s failed (exit %d): %s' % (argv[0], proc.returncode, output.decode('utf-8', 'replace').strip()[-2000:]))
    return proc


def output(argv: t.Sequence[str], check: bool = True) -> str:
    """stdout of a command as text."""
    return run(argv, check=check, capture=True).stdout.decode('utf-8', 'replace')


def read_json(name: str) -> t.Any:
    path = os.path.join(run_dir(), name)
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ToolError('%s does not exist: provisioner run writes it from the recipe' % path) from None
    except (OSError, ValueError) as exc:
        raise ToolError('cannot read %s: %s' % (path, exc)) from None


def read_input(name: str, required: bool = True) -> bytes | None:
    path = os.path.join(run_dir(), name)
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        if required:
            raise ToolError('%s does not exist: the recipe (or the task medium) has no %s' % (path, name)) from None
        return None


def main_wrapper(step: t.Callable[[], None], name: str) -> int:
    """Run a step; a ToolError is one clear line on stderr and exit code 1 (systemd marks the step failed)."""
    try:
        step()
    except ToolError as exc:
        print('%s: error: %s' % (name, exc), file=sys.stderr, flush=True)
        return 1
    log('%s: done' % name)
    return 0
