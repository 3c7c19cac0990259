# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the provisioning playbooks: a lab of real services (receiver, Redfish emulator, maintenance ISO)
with simulated nodes, and a runner for the collection's playbooks against an inventory file."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .lab import Lab
from .playbook import COLLECTION_ROOT, PlaybookResult, run_playbook


@pytest.fixture
def provisioning_lab(tmp_path: Path) -> t.Iterator[Lab]:
    """Receiver + sushy emulator with two servers (two virtual CDs each, power changes immediate) + maintenance ISO."""
    with Lab(tmp_path / 'lab', nodes=2) as lab:
        yield lab


@pytest.fixture
def provisioning_lab_factory(tmp_path: Path) -> t.Iterator[t.Callable[..., Lab]]:
    """``make(nodes=1, vmedia=ONE_CD_AND_USB, api_token=...)`` -> a started lab."""
    started: list[Lab] = []

    def make(**options: t.Any) -> Lab:
        lab = Lab(tmp_path / ('lab-%d' % len(started)), **options).start()
        started.append(lab)
        return lab

    yield make
    for lab in started:
        lab.stop()


class CollectionPlaybook(t.Protocol):
    def __call__(self, name: str, inventory: Path, extra_vars: t.Mapping[str, t.Any] | None = ..., check: bool = ...,
                 **kwargs: t.Any) -> PlaybookResult: ...


@pytest.fixture
def collection_playbook(tmp_path: Path) -> CollectionPlaybook:
    """Run ``playbooks/<name>.yml`` of the collection against an inventory file; see ``harness.playbook.run_playbook``."""
    work_dir = tmp_path / 'ansible'

    def run(name: str, inventory: Path, extra_vars: t.Mapping[str, t.Any] | None = None, check: bool = False, **kwargs: t.Any) -> PlaybookResult:
        return run_playbook(COLLECTION_ROOT / 'playbooks' / (name + '.yml'), work_dir, extra_vars=extra_vars, check=check,
                            inventory=str(inventory), **kwargs)

    return run
