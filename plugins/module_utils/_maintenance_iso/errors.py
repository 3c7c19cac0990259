# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the maintenance ISO build; the module turns each into one ``fail_json`` message."""

from __future__ import annotations

import typing as t


class MaintenanceIsoError(Exception):
    """A build that cannot go on; ``option`` names the module option at fault, when one is."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__('%s: %s' % (option, message) if option else message)
        self.option = option


class MissingToolError(MaintenanceIsoError):
    """A program the build needs is not installed (worded like Ansible's missing_required_bin, plus the package)."""

    def __init__(self, tools: t.Sequence[tuple[str, str, str]], paths: t.Sequence[str]) -> None:
        # tools: (program, Debian package, what it is needed for)
        self.tools = [name for name, _package, _why in tools]
        lines = ['"%s" (Debian package %s; %s)' % (name, package, why) for name, package, why in tools]
        super().__init__('Failed to find required executable%s %s in paths: %s. Install %s on the build host.'
                         % ('s' if len(lines) > 1 else '', ', '.join(lines), ':'.join(paths),
                            ' '.join(sorted({package for _name, package, _why in tools}))))


class NeedsRootError(MaintenanceIsoError):
    """The build runs mmdebstrap, podman and mounts as root."""


class CommandError(MaintenanceIsoError):
    """A build command failed: the stage, the command and the end of its output."""

    def __init__(self, stage: str, argv: t.Sequence[str], returncode: int, output_tail: str, log: str | None = None) -> None:
        self.stage = stage
        self.argv = list(argv)
        self.returncode = returncode
        self.output_tail = output_tail
        self.log = log
        where = ' (whole log: %s)' % log if log else ''
        super().__init__('stage %s: %s exited with %d%s; last lines of its output:\n%s'
                         % (stage, describe_argv(argv), returncode, where, output_tail))


def describe_argv(argv: t.Sequence[str], limit: int = 300) -> str:
    """The command as one line, shortened in the middle when very long (mmdebstrap hooks are long)."""
    text = ' '.join(argv)
    return text if len(text) <= limit else text[:limit // 2] + ' ... ' + text[-limit // 2:]
