# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line: ``provisioner run`` and ``provisioner notify``.  Exit 0 only on success."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import typing as t

from l3metal_contract import webhook

from . import callback as cb
from . import dispatch, medium, site
from .errors import ConfigError

DEFAULT_RUN_DIR = os.environ.get('PROVISION_RUN_DIR', '/run/provision')
LOG_TAIL_LINES = 40


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='provisioner', description='l3metal maintenance OS dispatcher')
    commands = parser.add_subparsers(dest='command', required=True)

    run = commands.add_parser('run', help='read the task medium, write the run directory and start the recipe target')
    run.add_argument('--medium', help='task medium: a device (/dev/sr1) or an image file; default: find it by label, then %s' % medium.DEFAULT_DEVICE)
    run.add_argument('--run-dir', default=DEFAULT_RUN_DIR, help='where recipe.env and the other files go (default %(default)s)')
    run.add_argument('--dry-run', action='store_true', help='do everything except starting the target; print the target it would start')
    run.add_argument('--label', default=medium.DEFAULT_LABEL, help='volume label of the task medium (default %(default)s)')
    run.add_argument('--reader', choices=medium.READERS, default='auto',
                     help='how to read the medium: auto (pycdlib or xorriso for ISO, mtools for FAT, else mount), or one of them')
    run.add_argument('--wait', type=float, default=90.0, help='seconds to wait for the medium device to appear (default %(default)s)')
    run.add_argument('--unit-dir', action='append', default=[], dest='unit_dirs',
                     help='where installed provisioning targets are looked up (repeatable; default: the systemd unit directories)')
    run.add_argument('--attempts', type=int, default=8, help='webhook delivery attempts (default %(default)s)')
    run.add_argument('--timeout', type=float, default=10.0, help='seconds per webhook attempt (default %(default)s)')
    run.add_argument('--serial-file', action='append', default=[], dest='serial_files',
                     help='file holding the server serial number (repeatable; the first usable one wins; default: DMI %s)'
                          % ', '.join(cb.DMI_SERIAL_FILES))
    run.add_argument('--cmdline-file', default=site.CMDLINE_FILE,
                     help='kernel command line to read l3metal.receiver=<url> from (default %(default)s)')

    notify = commands.add_parser('notify', help='send a signed status webhook for this job (used by the systemd units)')
    notify.add_argument('--status', required=True, choices=webhook.STATUSES)
    notify.add_argument('--step', help='unit the event is about, e.g. %%n or %%i in a unit file')
    notify.add_argument('--state', choices=webhook.PROGRESS_STATES, default='started', help='for --status progress (default %(default)s)')
    notify.add_argument('--reason', help='for --status failed: why (default: the unit failed)')
    notify.add_argument('--no-log-tail', action='store_true', help='for --status failed: do not attach the end of the step\'s journal')
    notify.add_argument('--run-dir', default=DEFAULT_RUN_DIR, help='where callback.json is (default %(default)s)')
    notify.add_argument('--attempts', type=int, help='delivery attempts (default 8; 3 for progress)')
    notify.add_argument('--timeout', type=float, default=10.0, help='seconds per attempt (default %(default)s)')
    return parser


def journal_tail(unit: str, lines: int = LOG_TAIL_LINES) -> str | None:
    """The end of a unit's journal, best effort (no journal in containers and tests)."""
    if shutil.which('journalctl') is None:
        return None
    try:
        proc = subprocess.run(['journalctl', '--no-pager', '-o', 'cat', '-n', str(lines), '-u', unit], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode('utf-8', 'replace').strip()
    if proc.returncode != 0 or not text or text.startswith('-- No entries --'):
        return None
    return text[-8000:]


def notify_body(args: argparse.Namespace) -> dict[str, t.Any]:
    if args.status == 'success':
        return webhook.success_body()
    if args.status == 'failed':
        step = args.step or 'unknown'
        log_tail = None if args.no_log_tail or not args.step else journal_tail(args.step)
        return webhook.failed_body(step, args.reason or '%s failed' % step, log_tail)
    if not args.step:
        raise ConfigError('--status progress needs --step')
    return webhook.progress_body(args.step, args.state)


def notify(args: argparse.Namespace) -> int:
    try:
        settings = cb.load(args.run_dir)
        body = notify_body(args)
        attempts = args.attempts if args.attempts is not None else (3 if args.status == 'progress' else 8)
        status = cb.sender(settings, attempts=attempts, timeout=args.timeout).send(body)
    except ConfigError as exc:
        print('provisioner notify: %s' % exc, file=sys.stderr)
        return 1
    except (webhook.WebhookDeliveryError, ValueError) as exc:
        print('provisioner notify: not delivered: %s' % exc, file=sys.stderr)
        return 1
    print('provisioner notify: %s delivered (HTTP %d)' % (args.status, status), file=sys.stderr)
    return 0


def main(argv: t.Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == 'run':
        options = dispatch.Options(medium=args.medium, run_dir=args.run_dir, dry_run=args.dry_run, label=args.label, reader=args.reader,
                                   wait=args.wait, unit_dirs=args.unit_dirs, attempts=max(1, args.attempts), timeout=args.timeout,
                                   serial_files=args.serial_files or cb.DMI_SERIAL_FILES, cmdline_file=args.cmdline_file)
        return dispatch.run(options)
    return notify(args)
