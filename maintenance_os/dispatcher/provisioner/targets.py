# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which provisioning targets are installed, and starting one.

A recipe names a systemd target; the dispatcher starts it only when a unit file of that name is
installed *and* declares itself a provisioning target with ``X-L3metal-Provisioning=yes`` in its
``[Unit]`` section (systemd ignores ``X-`` keys).  So a recipe cannot start ``poweroff.target``,
``rescue.target`` or anything else that merely exists on the system.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import typing as t

from .errors import PreflightError

MARKER_KEY = 'X-L3metal-Provisioning'
SYSTEM_UNIT_DIRS = ('/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system')
# Running from a source checkout: maintenance_os/systemd next to maintenance_os/dispatcher.
CHECKOUT_UNIT_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'systemd'))


def default_unit_dirs() -> list[str]:
    dirs = list(SYSTEM_UNIT_DIRS)
    if os.path.isdir(CHECKOUT_UNIT_DIR):
        dirs.append(CHECKOUT_UNIT_DIR)
    return dirs


def _is_provisioning_target(path: str) -> bool:
    parser = configparser.ConfigParser(strict=False, interpolation=None, allow_no_value=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive in systemd
    try:
        parser.read(path, encoding='utf-8')
    except (configparser.Error, OSError, UnicodeDecodeError):
        return False
    return parser.has_section('Unit') and (parser.get('Unit', MARKER_KEY, fallback='') or '').strip().lower() in ('yes', 'true', '1')


def installed_targets(unit_dirs: t.Sequence[str]) -> dict[str, str]:
    """Provisioning targets found in ``unit_dirs`` (first directory wins, like systemd's search path)."""
    found: dict[str, str] = {}
    shadowed: set[str] = set()
    for directory in unit_dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not name.endswith('.target') or name in found or name in shadowed:
                continue
            path = os.path.join(directory, name)
            if os.path.realpath(path) == os.devnull:  # masked
                shadowed.add(name)
                continue
            if _is_provisioning_target(path):
                found[name] = path
            else:
                shadowed.add(name)
    return found


def check_target(name: str, unit_dirs: t.Sequence[str]) -> str:
    installed = installed_targets(unit_dirs)
    if name not in installed:
        listing = ', '.join(sorted(installed)) or 'none'
        raise PreflightError('task_target %s is not a provisioning target installed on this maintenance OS (installed: %s)' % (name, listing))
    return installed[name]


def start_target(name: str, systemctl: str = 'systemctl') -> None:
    """Queue the start of ``name`` and return; the target's units report progress and the outcome."""
    try:
        proc = subprocess.run([systemctl, 'start', '--no-block', name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreflightError('cannot run systemctl start %s: %s' % (name, exc)) from None
    if proc.returncode != 0:
        raise PreflightError('systemctl start %s failed (exit %d): %s' % (name, proc.returncode, proc.stdout.decode('utf-8', 'replace').strip()))
