# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a test command (pytest or ansible-test units) and fail unless every suite really ran its tests.

Usage: require_tests.py LABEL --junit FILE [--minimums FILE] [--prefix tests/integration] [--partial] -- COMMAND [ARG...]

Streams the command's output, then reads the JUnit XML report the command wrote to FILE and counts
the passed tests of each suite: the test tree's second level (``tests/unit/common``,
``tests/integration/receiver``, ...).  It fails when the command failed, when pytest collected nothing
(exit 5), when the report is missing, or when a suite passed fewer tests than its minimum in the
minimums file (``tests/tools/minimum_tests.json``: ``{LABEL: {suite: count}}``) or vanished.  Raise
a minimum when a suite grows; lowering one is a decision a review should see.  ``--partial`` (a run
of selected tests, ``make integration PYTEST_ARGS=...``) checks no minimums, only that a test passed.
Prints the counts per suite, so the end of ``make test`` shows what each suite did.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_MINIMUMS = Path(__file__).resolve().parent / 'minimum_tests.json'


def suite_of(case: ET.Element, prefix: str = '') -> str:
    """``tests/<kind>/<area>`` of a test case, from its file or its dotted class name; ``prefix`` is put before a
    name that does not start at ``tests/`` (pytest names cases relative to its rootdir, e.g. tests/integration)."""
    name = case.get('file') or (case.get('classname') or '').replace('.', '/')
    parts = [part for part in name.split('/') if part]
    if 'tests' in parts:
        parts = parts[parts.index('tests'):]
    elif prefix:
        parts = [part for part in prefix.split('/') if part] + parts
    return '/'.join(parts[:3]) if len(parts) >= 3 else '/'.join(parts) or '?'


def count(report: Path, prefix: str = '') -> dict[str, dict[str, int]]:
    """{suite: {passed, failed, skipped}} from a JUnit XML report."""
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(report).getroot().iter('testcase'):
        outcome = 'passed'
        for child in case:
            if child.tag in ('failure', 'error'):
                outcome = 'failed'
            elif child.tag == 'skipped' and outcome == 'passed':
                outcome = 'skipped'
        entry = counts.setdefault(suite_of(case, prefix), {'passed': 0, 'failed': 0, 'skipped': 0})
        entry[outcome] += 1
    return counts


def check(label: str, counts: t.Mapping[str, t.Mapping[str, int]], minimums: t.Mapping[str, int]) -> list[str]:
    problems = []
    for suite, minimum in sorted(minimums.items()):
        passed = counts.get(suite, {}).get('passed', 0)
        if passed < minimum:
            problems.append('%s: %s passed %d tests, fewer than its minimum %d (%s)' % (label, suite, passed, minimum, 'tests/tools/minimum_tests.json'))
    for suite in sorted(set(counts) - set(minimums)):
        problems.append('%s: %s has no minimum in tests/tools/minimum_tests.json; add it (%d passed)' % (label, suite, counts[suite]['passed']))
    return problems


def main(argv: t.Sequence[str]) -> int:
    if '--' not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = list(argv).index('--')
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('label')
    parser.add_argument('--junit', required=True, type=Path, help='the JUnit XML report the command writes')
    parser.add_argument('--minimums', type=Path, default=DEFAULT_MINIMUMS)
    parser.add_argument('--partial', action='store_true', help='selected tests only: no minimums, at least one passed')
    parser.add_argument('--prefix', default='', help='path of the test cases whose names do not start at tests/ (pytest rootdir)')
    args = parser.parse_args(argv[:split])
    command = list(argv[split + 1:])
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    if args.junit.exists():
        os.unlink(args.junit)
    code = subprocess.call(command)
    if code == 5:
        print('%s: FAILED: no tests were collected (pytest exit 5)' % args.label)
        return 1
    if not args.junit.exists():
        print('%s: FAILED: no test report at %s (exit %d)' % (args.label, args.junit, code))
        return code or 1
    counts = count(args.junit, args.prefix)
    minimums = json.loads(args.minimums.read_text()).get(args.label, {})
    for suite, entry in sorted(counts.items()):
        print('%s: %-34s %4d passed, %d failed, %d skipped (minimum %s)'
              % (args.label, suite, entry['passed'], entry['failed'], entry['skipped'], minimums.get(suite, '-')))
    if args.partial:
        passed = sum(entry['passed'] for entry in counts.values())
        problems = [] if passed else ['%s: no test passed' % args.label]
    else:
        problems = check(args.label, counts, minimums)
    for problem in problems:
        print('%s: FAILED: %s' % (args.label, problem.split(': ', 1)[1]))
    if code != 0:
        print('%s: FAILED (exit %d)' % (args.label, code))
        return code
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
