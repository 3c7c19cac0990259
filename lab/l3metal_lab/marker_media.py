# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tiny bootable test media that say on the serial console what booted and what the guest sees.

``marker_iso(path, label, action)``: a hybrid BIOS + UEFI ISO (grub-mkrescue, ~20 MB, ~1 s to build) whose GRUB
prints, on the serial port::

    L3M-BOOT medium=<label> platform=<pc|efi>
    L3M-MEDIUM (<grub device>) <filesystem label or ->     one line per whole disk GRUB can read
    L3M-ACTION <halt|reboot|wait>

then halts (ACPI power off), reboots (a guest reset) or waits.  Under BIOS GRUB first lists what the
firmware's disk services show (the boot CD, hard disks, a USB stick), then loads its native IDE driver
(``pata`` for IDE, ``ahci`` for SATA on q35) and lists again: SeaBIOS gives no BIOS drive to a CD it did
not boot from, so a second CD is only visible through the native driver (which spends ~30 s on an empty
IDE drive: "PATA passthrough failed").  Under UEFI every CD, disk and USB stick is a firmware block device.
``pad_mib`` adds a file of zeros, for download timings of a large image; ``list_media=False`` prints no
listing (a medium that only has to say that it booted).  Written onto a disk, the ISO boots from it too
(grub-mkrescue makes a hybrid image: MBR boot code and an EFI system partition).

``fat_image(path, label, files)``: a FAT image (mkfs.vfat + mtools, no mount), the shape of the task medium
on a removable-disk slot.
"""

from __future__ import annotations

import subprocess
import tempfile
import typing as t
from pathlib import Path

MARKER = 'L3M-BOOT'
ACTIONS = ('halt', 'reboot', 'wait')

_GRUB_CFG = '''\
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
insmod halt
insmod reboot
insmod sleep
insmod echo
insmod ls
insmod scsi
insmod iso9660
insmod fat
insmod probe
insmod regexp
# Functions are parsed before they run: after "insmod pata" the BIOS CD the config is read from is gone.
function l3m_list {
  for d in (*); do
    if regexp '^\\([a-z]+[0-9]*\\)$' "${d}"; then
      if probe --label --set=lbl ${d}; then echo "L3M-MEDIUM ${d} ${lbl}"; else echo "L3M-MEDIUM ${d} -"; fi
    fi
  done
}
function l3m_main {
  if [ "%(list)s" = "yes" ]; then
    l3m_list
    if [ "${grub_platform}" = "pc" ]; then insmod pata; insmod ahci; ls; echo; l3m_list; fi
  fi
  echo "L3M-ACTION %(action)s"
  %(command)s
}
echo "%(marker)s medium=%(label)s platform=${grub_platform}"
l3m_main
'''


def marker_iso(path: Path, label: str, action: str = 'halt', pad_mib: int = 0, list_media: bool = True) -> Path:
    """Build the marker ISO at ``path``; ``list_media=False`` skips the listing (no native IDE probe: boots in ~1 s)."""
    if action not in ACTIONS:
        raise ValueError('action must be one of %s, not %r' % (', '.join(ACTIONS), action))
    command = {'halt': 'halt', 'reboot': 'reboot', 'wait': 'sleep 3600'}[action]
    with tempfile.TemporaryDirectory(prefix='marker-iso-') as work:
        root = Path(work) / 'root'
        (root / 'boot' / 'grub').mkdir(parents=True)
        settings = {'action': action, 'command': command, 'marker': MARKER, 'label': label, 'list': 'yes' if list_media else 'no'}
        (root / 'boot' / 'grub' / 'grub.cfg').write_text(_GRUB_CFG % settings)
        if pad_mib:
            with open(root / 'padding.bin', 'wb') as pad:
                pad.truncate(pad_mib * 1024 * 1024)  # zeros; xorriso writes them out in full
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(['grub-mkrescue', '-o', str(path), str(root), '--', '-volid', label], check=True, capture_output=True, timeout=600)
    return path


def fat_image(path: Path, label: str, files: t.Mapping[str, bytes], size_mib: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as image:
        image.truncate(size_mib * 1024 * 1024)
    subprocess.run(['mkfs.vfat', '-n', label, str(path)], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix='fat-') as work:
        for name, data in files.items():
            source = Path(work) / name
            source.write_bytes(data)
            subprocess.run(['mcopy', '-i', str(path), str(source), '::/' + name], check=True, capture_output=True)
    return path


def parse_boot(text: str) -> list[dict[str, t.Any]]:
    """Every marker boot in console text: medium, platform, the media GRUB listed, the action."""
    boots: list[dict[str, t.Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(MARKER + ' '):
            fields = dict(part.split('=', 1) for part in line.split()[1:] if '=' in part)
            boots.append({'medium': fields.get('medium'), 'platform': fields.get('platform'), 'media': {}, 'action': None})
        elif boots and line.startswith('L3M-MEDIUM '):
            parts = line.split()
            if len(parts) >= 3:
                boots[-1]['media'][parts[1]] = parts[2]
        elif boots and line.startswith('L3M-ACTION '):
            boots[-1]['action'] = line.split()[1]
    return boots
