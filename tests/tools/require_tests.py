# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a test command (pytest or ansible-test units) and fail unless tests really ran and passed.

Usage: require_tests.py LABEL -- COMMAND [ARG...]

Streams the command's output, then fails when the command failed, when pytest reports that it
collected nothing (its exit code 5, or a summary with no passed test), or when no pytest summary
line appears at all.  Prints the closing summary line again, labelled, so the end of `make test`
shows what each suite did.
"""

from __future__ import annotations

import re
import subprocess
import sys

SUMMARY = re.compile(r'^=*\s*((?:\d+ \w+(?:, )?)+) in [0-9.]+s(?: \([0-9:]+\))?\s*=*$')


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != '--':
        print(__doc__, file=sys.stderr)
        return 2
    label, command = sys.argv[1], sys.argv[3:]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    summary = None
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode('utf-8', 'replace')
        sys.stdout.write(line)
        sys.stdout.flush()
        match = SUMMARY.match(line.strip())
        if match:
            summary = match.group(1)
    code = proc.wait()
    if code == 5:
        print('%s: FAILED: no tests were collected (pytest exit 5)' % label)
        return 1
    if summary is None:
        print('%s: FAILED: no pytest summary line in the output (exit %d)' % (label, code))
        return 1
    print('%s: %s (exit %d)' % (label, summary, code))
    if code != 0:
        return code
    if not re.search(r'\b[1-9]\d* passed', summary):
        print('%s: FAILED: no test passed' % label)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
