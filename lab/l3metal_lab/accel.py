# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pick the QEMU accelerator for the lab's VMs: KVM only where a tiny boot under KVM is really fast.

``/dev/kvm`` opening is not enough: on these machines KVM aborts with ``-cpu host`` (``failed to set MSR
0x10a``), takes more than 40 s to reach GRUB with the default CPU (TCG: ~0.5 s) and dies in OVMF
(``KVM internal error. Suberror: 1``).  ``probe()`` boots the same marker ISO (marker_media.py) to its
GRUB line once under TCG and once under KVM, each as a plain QEMU process with the firmware the VMs will
use, and picks KVM only when KVM reached the marker and took less than ``max_ratio`` times TCG's time
(default 0.8: it must win).  That is also KVM's deadline (waiting longer cannot change the answer), so a
broken KVM costs about 1.8 x TCG's boot once (BIOS ~1-4 s, UEFI ~7-25 s here, depending on load).
The result is cached in a JSON file keyed on the kernel, the QEMU binary and the firmware, so a session
pays for it once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

from .marker_media import MARKER, marker_iso
from .paths import CACHE_DIR
from .vm import OVMF_CODE, OVMF_VARS

QEMU = '/usr/bin/qemu-system-x86_64'
DEFAULT_CACHE = CACHE_DIR / 'vm-lab' / 'accel.json'


@dataclasses.dataclass
class AccelChoice:
    domain_type: str                 # libvirt <domain type=...>: qemu (TCG) or kvm
    firmware: str
    tcg_seconds: float | None
    kvm_seconds: float | None        # None: no marker before the deadline, or KVM unusable
    reason: str

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def _boot_seconds(accel: str, iso: Path, firmware: str, deadline: float, work: Path) -> tuple[float | None, str]:
    console = work / ('%s.log' % accel)
    argv = [QEMU, '-accel', accel, '-m', '256', '-display', 'none', '-monitor', 'none', '-no-reboot', '-net', 'none',
            '-serial', 'file:%s' % console, '-cdrom', str(iso), '-boot', 'd']
    if firmware == 'uefi':
        vars_copy = work / ('%s-vars.fd' % accel)
        shutil.copyfile(OVMF_VARS, vars_copy)
        argv += ['-machine', 'pc', '-drive', 'if=pflash,format=raw,readonly=on,file=%s' % OVMF_CODE,
                 '-drive', 'if=pflash,format=raw,file=%s' % vars_copy]
    else:
        argv += ['-machine', 'pc,graphics=off']
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - start < deadline:
            if console.exists() and MARKER.encode() in console.read_bytes():
                return time.monotonic() - start, 'marker reached'
            if proc.poll() is not None:
                stderr = proc.stderr.read() if proc.stderr else b''
                return None, 'qemu exited %d: %s' % (proc.returncode, stderr.decode(errors='replace').strip()[-300:])
            time.sleep(0.05)
        return None, 'no marker within %.1f s' % deadline
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _cache_key(firmware: str) -> str:
    qemu = os.stat(QEMU)
    return '%s|%s|%d|%s' % (platform.release(), QEMU, int(qemu.st_mtime), firmware)


def probe(firmware: str = 'bios', max_ratio: float = 0.8, cache: Path | None = DEFAULT_CACHE) -> AccelChoice:
    key = _cache_key(firmware)
    if cache and cache.exists():
        try:
            known = json.loads(cache.read_text())
            if key in known:
                return AccelChoice(**known[key])
        except (ValueError, TypeError):
            pass
    with tempfile.TemporaryDirectory(prefix='l3m-accel-') as tmp:
        work = Path(tmp)
        iso = marker_iso(work / 'probe.iso', 'L3M_PROBE', action='halt')
        tcg, tcg_note = _boot_seconds('tcg', iso, firmware, 60.0, work)
        if tcg is None:
            raise RuntimeError('the accelerator probe could not boot its ISO under TCG (%s): QEMU or the firmware is broken' % tcg_note)
        try:
            with open('/dev/kvm', 'rb+'):
                usable = True
        except OSError as exc:
            usable, kvm, note = False, None, '/dev/kvm: %s' % exc.strerror
        if usable:
            kvm, note = _boot_seconds('kvm', iso, firmware, max_ratio * tcg, work)
    if kvm is not None and kvm < max_ratio * tcg:
        choice = AccelChoice('kvm', firmware, round(tcg, 2), round(kvm, 2), 'KVM reached the marker in %.2f s, TCG in %.2f s' % (kvm, tcg))
    else:
        choice = AccelChoice('qemu', firmware, round(tcg, 2), None if kvm is None else round(kvm, 2),
                             'TCG: KVM %s (TCG %.2f s)' % (note if kvm is None else 'took %.2f s' % kvm, tcg))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        known = {}
        if cache.exists():
            try:
                known = json.loads(cache.read_text())
            except ValueError:
                known = {}
        known[key] = choice.as_dict()
        cache.write_text(json.dumps(known, indent=2))
    return choice
