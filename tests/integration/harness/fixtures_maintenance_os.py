# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the maintenance OS suites: a receiver that knows the site node key, loop devices, the Quadlet generator."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest

from .loopdev import LoopDisk
from .playbook import COLLECTION_ROOT
from .receiver import Receiver, write_node_key
from .usersystemd import UserManager


def cache_dir() -> Path:
    """The checkout's .cache/ (kept across `make layout`), or the collection's when not run from a checkout's .build."""
    env = os.environ.get('L3METAL_CACHE_DIR')
    if env:
        return Path(env)
    checkout = COLLECTION_ROOT.parents[3] if len(COLLECTION_ROOT.parents) > 3 else COLLECTION_ROOT
    return (checkout if (checkout / 'Makefile').is_file() else COLLECTION_ROOT) / '.cache'


@pytest.fixture(scope='module')
def site_receiver(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Receiver]:
    """The real receiver started with ``--node-key-file`` (key ``harness.receiver.NODE_KEY``), shared by a module's tests
    (each registers jobs for serials of its own, harness.provisioner.NodeJob)."""
    work = tmp_path_factory.mktemp('site-receiver')
    server = Receiver(work, extra_args=['--node-key-file', str(write_node_key(work))]).start()
    yield server
    server.stop()


@pytest.fixture
def loop_disk(tmp_path: Path) -> t.Iterator[t.Callable[[str], LoopDisk]]:
    """Factory: a sparse disk image of the given size attached to a loop device, detached at the end."""
    disks: list[LoopDisk] = []

    def make(size: str) -> LoopDisk:
        disk = LoopDisk(tmp_path / ('disk%d.img' % len(disks)), size).attach()
        disks.append(disk)
        return disk

    yield make
    # a test that failed half-way may leave mounts (of the disks, or the vfat stand-in's tmpfs) below its directory
    for point in mounts_below(tmp_path):
        subprocess.run(['umount', '-l', point], check=False, capture_output=True)
    for disk in disks:
        disk.detach()


def mounts_below(directory: Path) -> list[str]:
    """Mount points at or below ``directory``, deepest first."""
    base = str(directory.resolve())
    points = []
    with open('/proc/self/mounts', encoding='utf-8') as mounts:
        for line in mounts:
            point = line.split(' ')[1].encode().decode('unicode_escape')
            if point == base or point.startswith(base + '/'):
                points.append(point)
    return sorted(points, key=lambda p: p.count('/'), reverse=True)


DEBIAN_SUITE = 'bookworm'
# One root filesystem for every test that needs a real Debian: GRUB to chroot into, python3 and the
# partition tools for a tool image base.
DEBIAN_PACKAGES = ('grub-pc-bin', 'grub2-common', 'python3', 'gdisk', 'dosfstools', 'mtools')


def debian_rootfs() -> Path:
    """A Debian root filesystem tar made by debootstrap once and cached in .cache/rootfs/; skips when the mirror is unreachable."""
    digest = hashlib.sha256(' '.join(DEBIAN_PACKAGES).encode()).hexdigest()[:12]
    out = cache_dir() / 'rootfs' / ('%s-%s.tar' % (DEBIAN_SUITE, digest))
    script = COLLECTION_ROOT / 'tests' / 'tools' / 'debootstrap_rootfs.sh'
    proc = subprocess.run(['sh', str(script), str(out), DEBIAN_SUITE] + list(DEBIAN_PACKAGES), capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode == 3:
        pytest.skip('cannot build the Debian test root filesystem: %s' % proc.stderr.strip()[-300:])
    if proc.returncode != 0:
        pytest.fail('debootstrap failed: %s' % proc.stderr[-3000:])
    return out


@pytest.fixture(scope='session')
def quadlet_binary() -> Path:
    """The Quadlet generator from Debian trixie's podman, fetched once into .cache/ by tests/tools/fetch_quadlet.sh."""
    script = COLLECTION_ROOT / 'tests' / 'tools' / 'fetch_quadlet.sh'
    cache = cache_dir() / 'quadlet'
    proc = subprocess.run(['sh', str(script), str(cache)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if shutil.which('apt-get') is None:
            pytest.skip('no apt-get to fetch the Quadlet generator: %s' % proc.stderr.strip()[-300:])
        pytest.fail('fetching the Quadlet generator failed: %s' % proc.stderr.strip()[-2000:])
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def user_systemd(tmp_path: Path) -> t.Iterator[t.Callable[..., UserManager]]:
    """Factory: a private ``systemd --user`` instance (see harness.usersystemd); stopped at the end."""
    managers: list[UserManager] = []

    def make(sbin_files: t.Mapping[str, str] | None = None) -> UserManager:
        manager = UserManager(tmp_path / ('systemd%d' % len(managers)), sbin_files)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.stop()
