# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m l3metal_receiver.registry verify DIR``: hash every blob of an OCI layout, check every tag's tree."""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

from .layout import verify_layout


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m l3metal_receiver.registry', description='checks for the embedded registry\'s OCI layout')
    commands = parser.add_subparsers(dest='command', required=True)
    verify = commands.add_parser('verify', help='hash every blob and check that every tag\'s manifests, configs and layers are stored')
    verify.add_argument('layout', type=Path, help='the --oci-layout directory')
    verify.add_argument('--default-repository', help='as the receiver\'s --oci-default-repository')
    args = parser.parse_args(argv)
    if not (args.layout / 'index.json').is_file():
        parser.error('%s has no index.json: not an OCI image layout' % args.layout)
    problems = verify_layout(args.layout, args.default_repository)
    for problem in problems:
        print(problem)
    print('%s: %s' % (args.layout, 'OK' if not problems else '%d problem(s)' % len(problems)), file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
