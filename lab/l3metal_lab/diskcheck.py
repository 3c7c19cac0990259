# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host-side checks of a disk a VM provisioned: read back from the raw image, never trusted from the node's reports.

::

    report = check_linux_disk(disk, layout, job_id=job_id, user_data=user_data)
    report.assert_ok()            # AssertionError listing every failed check with what was found
    report['bios boot code'].ok   # single checks by name

What is read, and how (this kernel cannot mount vfat or iso9660 and has no partition-table parsers):

- the GPT against the recipe's ``partition_layout``: ``sgdisk -p``/``-i`` (type codes or GUIDs, GPT names = labels,
  sizes, ``100%`` reaching the end of the disk), ``sgdisk --verify``;
- file systems: ``blkid -p -O <offset>`` (type, label, UUID);
- the Linux root (ext4): ``debugfs 'disk?offset=N'`` (files, /etc/fstab by UUID, grub.cfg with ``root=UUID=``);
- GRUB's BIOS boot code: boot.img in the protective MBR (the ``GRUB`` string of its messages, 0x55AA) and core.img in
  the BIOS boot partition (non-empty, GRUB's diskboot sector), /boot/grub/i386-pc/core.img in the root;
- the ESP and the config drive: mtools at the partition's offset (``mdir -i disk@@N``): EFI/BOOT/BOOTX64.EFI and the
  distribution's grubx64.efi; cidata's user-data and meta-data (instance-id = the job id);
- Windows: NTFS through ntfs-3g, read-only, on a loop device at the partition's offset (root), the tree compared with
  ``wimlib-imagex dir`` of the applied image plus Windows/Panther/unattend.xml; the ESP's boot files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import tempfile
import typing as t
from pathlib import Path

from l3mtools import layout as layouts

SECTOR = 512
_UNITS = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
MTOOLS_ENV = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null'}


class DiskCheckError(RuntimeError):
    """A tool that reads the disk failed (not a failed check: the disk could not be read)."""


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ''

    def line(self) -> str:
        return '%s %s%s' % ('ok  ' if self.ok else 'FAIL', self.name, ': ' + self.detail if self.detail else '')


@dataclasses.dataclass(frozen=True)
class Partition:
    number: int
    start: int          # bytes
    size: int           # bytes
    code: str           # sgdisk's 4-digit type code, upper case (EF00)
    type_guid: str      # lower case
    name: str           # GPT partition name

    @property
    def end_sector(self) -> int:
        return (self.start + self.size) // SECTOR - 1


@dataclasses.dataclass
class DiskReport:
    disk: Path
    partitions: list[Partition]
    checks: list[Check] = dataclasses.field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = '') -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError('no check %r; checks: %s' % (name, [check.name for check in self.checks]))

    def summary(self) -> str:
        return '\n'.join(check.line() for check in self.checks)

    def assert_ok(self) -> DiskReport:
        if not self.ok:
            raise AssertionError('%d of %d disk checks failed on %s:\n%s\n\nall checks:\n%s'
                                 % (len(self.failures), len(self.checks), self.disk, '\n'.join(check.line() for check in self.failures),
                                    self.summary()))
        return self


# -- reading the disk ----------------------------------------------------------------------------------------------------
def _run(argv: t.Sequence[str], env: t.Mapping[str, str] | None = None, binary: bool = False, check: bool = True) -> t.Any:
    proc = subprocess.run(list(argv), capture_output=True, env=dict(os.environ, **(env or {})), check=False, timeout=300)
    if check and proc.returncode != 0:
        raise DiskCheckError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, proc.stderr.decode(errors='replace').strip()[-1500:]))
    return proc.stdout if binary else proc.stdout.decode(errors='replace')


def gpt_partitions(disk: Path) -> tuple[list[Partition], int]:
    """The GPT's partitions and the last usable sector (``sgdisk -p`` and ``-i``)."""
    text = _run(['sgdisk', '-p', str(disk)])
    last = re.search(r'last usable sector is (\d+)', text)
    parts = []
    for match in re.finditer(r'^[ \t]+(\d+)[ \t]+(\d+)[ \t]+(\d+)[ \t]+\S+[ \t]+\S+[ \t]+([0-9A-F]{4})[ \t]*(.*)$', text, re.MULTILINE):
        number, first, end = int(match.group(1)), int(match.group(2)), int(match.group(3))
        info = _run(['sgdisk', '-i', str(number), str(disk)])
        guid = re.search(r'Partition GUID code: ([0-9A-Fa-f-]{36})', info)
        name = re.search(r"Partition name: '(.*)'", info)
        parts.append(Partition(number, first * SECTOR, (end - first + 1) * SECTOR, match.group(4).upper(),
                               guid.group(1).lower() if guid else '', name.group(1) if name else ''))
    return parts, int(last.group(1)) if last else 0


def blkid(disk: Path, part: Partition) -> dict[str, str]:
    out = _run(['blkid', '-p', '-o', 'export', '-O', str(part.start), '-S', str(part.size), str(disk)], check=False)
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def debugfs(disk: Path, part: Partition, command: str) -> str:
    return str(_run(['debugfs', '-R', command, '%s?offset=%d' % (disk, part.start)]))


def ext_file(disk: Path, part: Partition, path: str) -> bytes | None:
    """A file of an ext2/3/4 file system (None when missing)."""
    if 'Type: regular' not in debugfs(disk, part, 'stat %s' % path):
        return None
    return t.cast(bytes, _run(['debugfs', '-R', 'cat %s' % path, '%s?offset=%d' % (disk, part.start)], binary=True))


def fat_file(disk: Path, part: Partition, path: str) -> bytes | None:
    proc = subprocess.run(['mtype', '-i', '%s@@%d' % (disk, part.start), '::' + path], capture_output=True,
                          env=dict(os.environ, **MTOOLS_ENV), check=False, timeout=120)
    return proc.stdout if proc.returncode == 0 else None


def fat_tree(disk: Path, part: Partition) -> list[str]:
    """Every path on a FAT file system, upper case as mtools lists them is not assumed: names as stored."""
    out = _run(['mdir', '-/', '-b', '-i', '%s@@%d' % (disk, part.start), '::/'], env=MTOOLS_ENV, check=False)
    return sorted(line.strip()[2:] if line.strip().startswith('::') else line.strip() for line in out.splitlines() if line.strip())


def _size_bytes(size: str) -> int | None:
    text = size.strip().upper()
    if text.endswith('%'):
        return None
    unit = _UNITS.get(text[-1:], None)
    return int(float(text[:-1]) * unit) if unit else int(text)


def _type_matches(wanted: str, part: Partition) -> bool:
    wanted = wanted.lower()
    return wanted == part.type_guid if '-' in wanted else wanted.upper() == part.code


# -- checks --------------------------------------------------------------------------------------------------------------------
def check_layout(report: DiskReport, layout: t.Sequence[t.Mapping[str, t.Any]], last_usable: int) -> None:
    """The GPT holds exactly the recipe's partitions, in order, with their types, sizes, names and file systems."""
    parts = report.partitions
    if not report.add('partition count', len(parts) == len(layout), 'GPT has %d, the recipe %d' % (len(parts), len(layout))):
        return
    verify = _run(['sgdisk', '--verify', str(report.disk)], check=False)
    report.add('sgdisk --verify', 'No problems found' in verify,
               next((line.strip() for line in verify.splitlines() if 'problem' in line.lower()), verify.strip()[-300:] or 'no output'))
    for wanted, part in zip(layout, parts, strict=True):
        label = 'p%d' % part.number
        report.add('%s type' % label, _type_matches(wanted['type_guid'], part), 'recipe %s, GPT %s (%s)' % (wanted['type_guid'], part.code, part.type_guid))
        size = _size_bytes(wanted['size'])
        if size is None:
            report.add('%s size' % label, part.end_sector >= last_usable - 2048,
                       '%s: ends at sector %d, the last usable is %d' % (wanted['size'], part.end_sector, last_usable))
        else:
            report.add('%s size' % label, part.size == size, 'recipe %s = %d bytes, GPT %d bytes' % (wanted['size'], size, part.size))
        if wanted.get('label'):
            report.add('%s GPT name' % label, part.name == wanted['label'], 'recipe label %r, GPT name %r' % (wanted['label'], part.name))
        if wanted.get('format'):
            found = blkid(report.disk, part)
            kind = {'vfat': 'vfat', 'fat32': 'vfat'}.get(wanted['format'], wanted['format'])
            report.add('%s file system' % label, found.get('TYPE') == kind, 'recipe %s, blkid TYPE=%s' % (wanted['format'], found.get('TYPE')))
            if wanted.get('label'):
                report.add('%s file system label' % label, (found.get('LABEL') or '').lower() == str(wanted['label']).lower(),
                           'recipe %r, blkid LABEL=%r' % (wanted['label'], found.get('LABEL')))


def _partition_for(report: DiskReport, recipe_part: layouts.Partition | None) -> Partition | None:
    if recipe_part is None:
        return None
    return next((part for part in report.partitions if part.number == recipe_part.number), None)


def check_bios_boot_code(report: DiskReport, bios_part: Partition, root: Partition | None) -> None:
    """boot.img in the protective MBR's boot code area and core.img embedded in the BIOS boot partition."""
    with open(report.disk, 'rb') as raw:
        mbr = raw.read(SECTOR)
        raw.seek(bios_part.start)
        core = raw.read(min(bios_part.size, 64 * 1024))
    report.add('bios boot code', b'GRUB' in mbr[:440] and mbr[510:512] == b'\x55\xaa',
               'MBR boot code %s the GRUB boot.img string, signature %s' % ('holds' if b'GRUB' in mbr[:440] else 'lacks', mbr[510:512].hex()))
    used = len(core.rstrip(b'\0'))
    report.add('bios core.img', used > 10000 and b'loading' in core[:SECTOR],
               'BIOS boot partition p%d: %d bytes used, diskboot sector %s' % (bios_part.number, used, 'found' if b'loading' in core[:SECTOR] else 'missing'))
    if root is not None:
        report.add('core.img in /boot/grub/i386-pc', ext_file(report.disk, root, '/boot/grub/i386-pc/core.img') is not None)


def check_linux_disk(disk: Path, layout: t.Sequence[t.Mapping[str, t.Any]], firmware: str = 'bios', job_id: str | None = None,
                     user_data: bytes | None = None, expect_files: t.Sequence[str] = ('/etc/fstab', '/boot/grub/grub.cfg'),
                     expect_content: t.Mapping[str, bytes] | None = None) -> DiskReport:
    """Workflow A on the disk: layout, file systems, the root's files, fstab and grub.cfg by UUID, GRUB for BIOS (when the
    layout has a BIOS boot partition) and UEFI (when it has an ESP), the config drive.  ``firmware`` is how the VM booted
    (UEFI additionally expects the distribution's EFI/<distributor>/grubx64.efi beside EFI/BOOT/BOOTX64.EFI)."""
    disk = Path(disk)
    parts, last_usable = gpt_partitions(disk)
    report = DiskReport(disk, parts)
    check_layout(report, layout, last_usable)
    recipe = layouts.parse([dict(item) for item in layout])
    mounts = dict(layouts.mounts(recipe))
    root = _partition_for(report, mounts.get('/'))
    esp = _partition_for(report, layouts.esp(recipe))
    if root is None or (mounts['/'].format or '') not in ('ext4', 'ext3', 'ext2'):
        report.add('root file system readable', False, 'only an ext2/3/4 root is read (debugfs); the recipe has %s' % (mounts.get('/'),))
    else:
        for path in expect_files:
            report.add('root: %s' % path, ext_file(disk, root, path) is not None)
        for path, content in (expect_content or {}).items():
            found = ext_file(disk, root, path)
            report.add('root: %s content' % path, found == content, 'expected %r, found %r' % (content[:80], (found or b'')[:80]))
        listing = debugfs(disk, root, 'ls -l /boot')
        report.add('root: kernel in /boot', 'vmlinuz-' in listing, 'ls /boot: %s' % ' '.join(re.findall(r'(vmlinuz-\S+|initrd\.img-\S+)', listing)))
        fstab = (ext_file(disk, root, '/etc/fstab') or b'').decode(errors='replace')
        root_uuid = blkid(disk, root).get('UUID', '?')
        report.add('fstab: / by UUID', re.search(r'^UUID=%s\s+/\s' % re.escape(root_uuid), fstab, re.MULTILINE) is not None,
                   'root UUID %s; fstab: %s' % (root_uuid, fstab.strip().replace('\n', ' | ')))
        if esp is not None and '/boot/efi' in mounts:
            esp_uuid = blkid(disk, esp).get('UUID', '?')
            report.add('fstab: /boot/efi by UUID', re.search(r'^UUID=%s\s+/boot/efi\s' % re.escape(esp_uuid), fstab, re.MULTILINE) is not None,
                       'ESP UUID %s' % esp_uuid)
        grub = (ext_file(disk, root, '/boot/grub/grub.cfg') or b'').decode(errors='replace')
        report.add('grub.cfg boots root=UUID', 'root=UUID=%s' % root_uuid in grub,
                   next((line.strip() for line in grub.splitlines() if line.strip().startswith('linux')), 'no linux line in grub.cfg'))
    bios_part = _partition_for(report, layouts.bios_boot(recipe))
    if bios_part is not None:
        check_bios_boot_code(report, bios_part, root)
    if esp is not None:
        tree = {path.upper() for path in fat_tree(disk, esp)}
        report.add('ESP: EFI/BOOT/BOOTX64.EFI', '/EFI/BOOT/BOOTX64.EFI' in tree, 'ESP holds %s' % ', '.join(sorted(tree)[:12]))
        if firmware == 'uefi':
            report.add('ESP: grubx64.efi of the distribution', any(p.endswith('/GRUBX64.EFI') and not p.startswith('/EFI/BOOT/') for p in tree),
                       'ESP holds %s' % ', '.join(sorted(tree)[:12]))
    cidata = _partition_for(report, layouts.config_drive(recipe))
    if cidata is not None:
        meta = (fat_file(disk, cidata, '/meta-data') or b'').decode(errors='replace')
        if job_id is not None:
            instance = re.search(r'instance-id:\s*"?%s"?\s*$' % re.escape(job_id), meta, re.MULTILINE)
            report.add('cidata: meta-data instance-id is the job id', instance is not None, 'meta-data: %r' % meta[:200])
        else:
            report.add('cidata: meta-data', bool(meta.strip()), 'meta-data: %r' % meta[:200])
        if user_data is not None:
            found = fat_file(disk, cidata, '/user-data')
            report.add('cidata: user-data is the recipe\'s', found == user_data, 'found %r' % (found or b'')[:120])
    return report


@contextlib.contextmanager
def ntfs_mounted(disk: Path, part: Partition) -> t.Iterator[Path]:
    """The NTFS partition read-only through ntfs-3g on a loop device at its offset (needs root and a free loop device)."""
    loop = _run(['losetup', '-f', '--show', '-r', '-o', str(part.start), '--sizelimit', str(part.size), str(disk)]).strip()
    mountpoint = Path(tempfile.mkdtemp(prefix='l3m-ntfs-'))
    try:
        _run(['ntfs-3g', '-o', 'ro', loop, str(mountpoint)])
        try:
            yield mountpoint
        finally:
            _run(['umount', str(mountpoint)], check=False)
    finally:
        _run(['losetup', '-d', loop], check=False)
        mountpoint.rmdir()


def wim_listing(wim: Path, index: int) -> list[str]:
    return sorted(line for line in _run(['wimlib-imagex', 'dir', str(wim), str(index)]).splitlines() if line and line != '/')


def wim_file(wim: Path, index: int, path: str) -> bytes:
    return t.cast(bytes, _run(['wimextract', str(wim), str(index), path, '--to-stdout'], binary=True))


def check_windows_disk(disk: Path, wim: Path, index: int, layout: t.Sequence[t.Mapping[str, t.Any]], unattend: bytes | None = None) -> DiskReport:
    """Workflow B on the disk: layout, the NTFS tree = the WIM image's listing (+ Panther/unattend.xml), the boot files on the ESP."""
    disk = Path(disk)
    parts, last_usable = gpt_partitions(disk)
    report = DiskReport(disk, parts)
    check_layout(report, layout, last_usable)
    recipe = layouts.parse([dict(item) for item in layout])
    ntfs = _partition_for(report, layouts.windows(recipe))
    esp = _partition_for(report, layouts.esp(recipe))
    expected = wim_listing(wim, index)
    if unattend is not None:
        expected = sorted(set(expected) | {'/Windows/Panther', '/Windows/Panther/unattend.xml'})
    if ntfs is None:
        report.add('NTFS partition', False, 'the recipe has no Windows (0700/basic data NTFS) partition')
    else:
        with ntfs_mounted(disk, ntfs) as root:
            found = sorted('/' + str(path.relative_to(root)) for path in root.rglob('*'))
            missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
            report.add('NTFS tree = WIM image %d' % index, not missing and not extra,
                       '%d entries; missing %s; extra %s' % (len(found), missing[:10], extra[:10]))
            if unattend is not None:
                panther = root / 'Windows' / 'Panther' / 'unattend.xml'
                report.add('Windows/Panther/unattend.xml', panther.is_file() and panther.read_bytes() == unattend,
                           'found %r' % (panther.read_bytes()[:120] if panther.is_file() else None))
    if esp is not None:
        boot = fat_file(disk, esp, '/EFI/Boot/bootx64.efi')
        report.add('ESP: EFI/Boot/bootx64.efi is the image\'s bootmgfw.efi', boot == wim_file(wim, index, '/Windows/Boot/EFI/bootmgfw.efi'),
                   'found %r' % (boot or b'')[:80])
        report.add('ESP: EFI/Microsoft/Boot/BCD', fat_file(disk, esp, '/EFI/Microsoft/Boot/BCD') is not None)
    return report
