# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End-to-end suites (``make e2e``): the collection's playbooks against servers that are QEMU VMs, and the real node.

Every module of ``fixtures/`` is loaded as a pytest plugin (each area brings its fixtures in a file of its own).  A
failed test gets the last 50 console lines of every VM of the labs it used added to its report.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from l3metal_lab.vmlab import VmLab

pytest_plugins = sorted('fixtures.' + path.stem for path in (Path(__file__).resolve().parent / 'fixtures').glob('*.py') if path.stem != '__init__')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> t.Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != 'call' or not report.failed:
        return
    labs = [value for value in getattr(item, 'funcargs', {}).values() if isinstance(value, VmLab)]
    for lab in labs:
        for index, spec in enumerate(lab.vm_bmc.specs):
            tail = lab.console(index).tail(50)
            if tail:
                report.sections.append(('console of %s (%s), last 50 lines' % (spec.name, spec.firmware), tail))
