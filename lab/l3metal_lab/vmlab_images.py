# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Everything the VM lab takes from the maintenance-ISO work, in one place: the node images and the disk checks.

What a VM server boots and installs: the live maintenance ISO, the Linux root filesystem artifact (a small Debian
with kernel, GRUB and cloud-init), a small WIM, a firmware file; and the host-side checks of a provisioned disk.

TEMPORARY: until ``l3metal_lab.node_images`` / ``l3metal_lab.diskcheck`` (branch maintenance-iso, the role
``l3metal.provision.maintenance_iso``) are merged, these come from the ISO prototype in ``$L3METAL_PROTO_ISO``
(default /work/proto/iso): its build scripts (``build_iso.sh``, ``stage_target_rootfs.sh``: cached, a no-op when
nothing changed) and its check scripts.  The prototype builds the maintenance OS of its own source checkout
(``$SRC``, its default: the node-fixes worktree; ``$L3METAL_ISO_SOURCE`` overrides it), which predates the move of
the shared code to common/.  Callers use only ``node_images()``, ``check_linux_disk()`` and ``check_windows_disk()``,
so the switch is this file.  ``$L3METAL_MAINTENANCE_ISO`` names an ISO to use as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import time
import typing as t
from pathlib import Path

from .paths import CACHE_DIR

PROTO = Path(os.environ.get('L3METAL_PROTO_ISO', '/work/proto/iso'))
FIRMWARE_IMAGE = b'L3METAL LAB FIRMWARE IMAGE v1\n' * 4096  # what the flasher downloads and "flashes" (its test command)
WIM_INDEX = 2  # the prototype's WIM: image 1 a decoy, image 2 the one to apply


class ImagesUnavailable(RuntimeError):
    """The node images cannot be had on this machine (the message says what is missing)."""


@dataclasses.dataclass
class NodeImages:
    maintenance_iso: Path      # the live maintenance ISO (hybrid BIOS + UEFI)
    linux_rootfs: Path         # rootfs.tar.gz: the image-linux artifact
    windows_wim: Path          # install.wim with image WIM_INDEX
    firmware: Path             # the firmware file the flasher downloads
    origin: str                # where they came from, for the logs
    seconds: dict[str, float]  # build (or look-up) time per image

    @property
    def iso_sha256(self) -> str:
        checksum = self.maintenance_iso.with_name(self.maintenance_iso.name + '.sha256')
        if checksum.exists():
            return checksum.read_text().split()[0]
        digest = hashlib.sha256()
        with open(self.maintenance_iso, 'rb') as iso:
            for block in iter(lambda: iso.read(1 << 20), b''):
                digest.update(block)
        return digest.hexdigest()


def _proto_script(name: str, log: Path) -> Path:
    """Run a prototype build script with this checkout as the source; the last line of its output is its result."""
    script = PROTO / name
    if not script.exists():
        raise ImagesUnavailable('%s is missing: the VM lab builds its node images with the maintenance-ISO prototype until '
                                'l3metal_lab.node_images (branch maintenance-iso) is merged' % script)
    env = dict(os.environ)
    source = os.environ.get('L3METAL_ISO_SOURCE')
    if source:
        env.update(SRC=source, VENV=str(Path(source) / '.venv'))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'ab') as out:
        proc = subprocess.run([str(script)], env=env, stdout=subprocess.PIPE, stderr=out, check=False, timeout=3600)
    if proc.returncode != 0:
        raise ImagesUnavailable('%s failed (exit %d); its log: %s' % (script, proc.returncode, log))
    return Path(proc.stdout.decode().strip().splitlines()[-1])


def node_images(log: Path | None = None, need: t.Collection[str] = ('iso', 'linux', 'windows', 'firmware')) -> NodeImages:
    """The node images, built or taken from the cache (``need``: which ones must exist)."""
    log = log or CACHE_DIR / 'vm-lab' / 'images.log'
    seconds: dict[str, float] = {}
    start = time.monotonic()
    configured = os.environ.get('L3METAL_MAINTENANCE_ISO')
    if configured:
        iso = Path(configured).resolve()
    elif 'iso' in need:
        iso = _proto_script('build_iso.sh', log).resolve()
    else:
        iso = (PROTO / 'out' / 'l3m-maint.iso').resolve()
    seconds['maintenance_iso'] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    rootfs = (_proto_script('stage_target_rootfs.sh', log) / 'rootfs.tar.gz') if 'linux' in need else PROTO / 'cache' / 'missing'
    seconds['linux_rootfs'] = round(time.monotonic() - start, 1)
    wim = PROTO / 'cache' / 'windows' / 'install.wim'
    firmware = CACHE_DIR / 'vm-lab' / 'lab-bios.bin'
    if not firmware.exists() or firmware.read_bytes() != FIRMWARE_IMAGE:
        firmware.parent.mkdir(parents=True, exist_ok=True)
        firmware.write_bytes(FIRMWARE_IMAGE)
    wanted = {'iso': iso, 'linux': rootfs, 'windows': wim, 'firmware': firmware}
    missing = ['%s (%s)' % (name, wanted[name]) for name in need if not wanted[name].is_file()]
    if missing:
        raise ImagesUnavailable('node images missing: %s' % ', '.join(missing))
    return NodeImages(iso, rootfs, wim, firmware, 'prototype %s (temporary, until l3metal_lab.node_images)' % PROTO, seconds)


class DiskReport(t.NamedTuple):
    ok: bool
    text: str   # every check with ok/FAIL, as the check printed it


def _check(argv: list[str]) -> DiskReport:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    return DiskReport(proc.returncode == 0, proc.stdout + proc.stderr)


def check_linux_disk(disk: Path, firmware: str, job_id: str) -> DiskReport:
    """GPT as the recipe laid it out, file systems, rootfs files, GRUB's boot code (BIOS) / EFI files, cidata (job's meta-data)."""
    return _check([str(PROTO / 'check_disk.sh'), str(disk), firmware, job_id])


def check_windows_disk(disk: Path, wim: Path) -> DiskReport:
    """GPT types, the NTFS tree against the WIM's image WIM_INDEX, unattend.xml in Windows/Panther, boot files on the ESP."""
    return _check([str(PROTO / 'check_windows_disk.sh'), str(disk), str(wim)])
