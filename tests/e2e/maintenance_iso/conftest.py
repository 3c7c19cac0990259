# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the maintenance ISO e2e tests: the lab's ISO (built once per run through the real role), artifacts, a VM.

The ISO is the one every e2e boot uses (l3metal_lab.node_images.maintenance_iso): built cold the first time in a CI
run (a few minutes), then found up to date by every later caller in seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import typing as t
from pathlib import Path

import pytest

from l3metal_lab import node_images
from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.prerequisites import require
from l3metal_lab.receiver import Receiver, write_node_key
from l3metal_lab.registry import Registry

PROGRAMS = ('mmdebstrap', 'podman', 'skopeo', 'mksquashfs', 'unsquashfs', 'grub-mkrescue', 'xorriso', 'mformat', 'qemu-system-x86_64')


@pytest.fixture(scope='session')
def e2e_prerequisites() -> None:
    require(os.geteuid() == 0, 'the maintenance ISO is built as root (mmdebstrap, podman with its own store, mounts)')
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    require(not missing, 'programs missing: %s (tests/apt-packages.d/maintenance_iso.txt)' % ' '.join(missing))


@pytest.fixture(scope='session')
def receiver_port(e2e_prerequisites: None) -> int:
    """The receiver port the lab ISO names on its kernel command line (18480, or $L3METAL_E2E_RECEIVER_PORT; checked free)."""
    return node_images.e2e_receiver_port()


@pytest.fixture(scope='session')
def lab_iso(receiver_port: int) -> node_images.MaintenanceIso:
    """The lab's maintenance ISO, built (cold: minutes) or found up to date, through the role and the real module."""
    return node_images.maintenance_iso(receiver_port)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """<$L3METAL_E2E_ARTIFACTS or tests/output/e2e>/maintenance_iso/<test>/: the VM console, the job record, the disk
    check, the timings; kept after the run (CI collects tests/output)."""
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.nodeid.split('::', 1)[-1])
    root = Path(os.environ.get('L3METAL_E2E_ARTIFACTS') or COLLECTION_ROOT / 'tests' / 'output' / 'e2e')
    path = root / 'maintenance_iso' / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope='session')
def accel() -> str:
    """The QEMU accelerator of these boots: TCG unless $L3METAL_QEMU_ACCEL says otherwise.  /dev/kvm on this project's
    machines opens but breaks (ENVIRONMENT-NOTES §6); the VM lab's l3metal_lab.accel probes it for the playbook e2e."""
    return os.environ.get('L3METAL_QEMU_ACCEL', 'tcg')


@pytest.fixture(scope='module')
def registry(e2e_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Registry]:
    """A real distribution registry on the host loopback (the guest reaches it at 10.0.2.2)."""
    with Registry(tmp_path_factory.mktemp('registry')) as running:
        yield running


@pytest.fixture
def receiver(receiver_port: int, artifacts: Path) -> t.Iterator[Receiver]:
    """The real receiver on the port the ISO names, with the ISO's site node key; it tells nodes its guest-side URL."""
    running = Receiver(artifacts / 'receiver', port=receiver_port,
                       extra_args=['--node-key-file', str(write_node_key(artifacts)),
                                   '--public-url', node_images.guest_receiver_url(receiver_port)]).start()
    try:
        yield running
    finally:
        running.stop()
