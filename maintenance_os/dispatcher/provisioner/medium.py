# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Find the task medium and read files from it.

The medium is what ``task_iso`` builds: an ISO 9660 image (Joliet + Rock Ridge) on a virtual CD, or
a FAT filesystem without partition table on a virtual removable disk.  Discovery order: the volume
label (``/dev/disk/by-label/``, then ``blkid``), then ``/dev/sr1`` (the design's second virtual CD),
then any CD or removable disk whose ISO or FAT label is the task label.  Device nodes appear while
udev settles after boot, so discovery polls until a deadline.

Readers: files are read in user space by default (pycdlib, else xorriso, for ISO 9660; mtools for FAT): no mount
point to clean up, works on image files and block devices alike, and on kernels without iso9660 or
vfat.  ``MountReader`` mounts read-only with the kernel instead (``--reader mount``).
"""

from __future__ import annotations

import abc
import glob
import io
import os
import shutil
import subprocess
import tempfile
import time
import typing as t

from l3metal_contract import medium as contract_medium

from .errors import MediumError

try:
    import pycdlib
    HAS_PYCDLIB = True
except ImportError:  # pragma: no cover - the image and the test environment install it
    HAS_PYCDLIB = False

DEFAULT_LABEL = contract_medium.DEFAULT_LABEL  # what task_iso writes
DEFAULT_DEVICE = '/dev/sr1'
MAX_FILE_BYTES = 64 * 1024 * 1024
READERS = ('auto', 'pycdlib', 'xorriso', 'mtools', 'mount')

_ISO_MAGIC_OFFSET = 0x8001  # "CD001" of the primary volume descriptor (sector 16, byte 1)
_ISO_LABEL_OFFSET = 0x8028
_MTOOLS_ENV = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null', 'MTOOLS_NO_VFAT': '0'}


def _read_head(path: str, size: int = 0x8800) -> bytes:
    try:
        with open(path, 'rb') as handle:
            return handle.read(size)
    except OSError as exc:
        raise MediumError('cannot read %s: %s' % (path, exc.strerror or exc)) from None


def detect_format(head: bytes) -> str | None:
    """'iso', 'fat' or None for the first bytes of a medium."""
    if head[_ISO_MAGIC_OFFSET:_ISO_MAGIC_OFFSET + 5] == b'CD001':
        return 'iso'
    if len(head) >= 512 and head[510:512] == b'\x55\xaa' and (head[54:57] == b'FAT' or head[82:87] == b'FAT32'):
        return 'fat'
    return None


def volume_label(head: bytes) -> str | None:
    """The ISO 9660 volume id or the FAT boot-sector label of a medium, stripped; None when neither."""
    fmt = detect_format(head)
    if fmt == 'iso':
        raw = head[_ISO_LABEL_OFFSET:_ISO_LABEL_OFFSET + 32]
    elif fmt == 'fat':
        raw = head[71:82] if head[82:87] == b'FAT32' else head[43:54]
    else:
        return None
    return raw.decode('ascii', 'replace').strip()


class MediumReader(abc.ABC):
    """Read top-level files of a task medium by name (``recipe.json``, ``user-data``, ...)."""

    source: str

    @abc.abstractmethod
    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when the medium has no such file."""

    def close(self) -> None:  # noqa: B027  # a reader with nothing to release keeps this default
        """Release the medium (unmount, close handles)."""

    def __enter__(self) -> MediumReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PycdlibReader(MediumReader):
    """ISO 9660 read with pycdlib: Rock Ridge names first, then Joliet, then plain ISO 9660 names."""

    def __init__(self, source: str) -> None:
        if not HAS_PYCDLIB:
            raise MediumError('reading %s needs the pycdlib Python library (or --reader mount)' % source)
        self.source = source
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(source)
        except Exception as exc:  # pycdlib raises its own exception types and OSError
            raise MediumError('%s is not a readable ISO 9660 image: %s' % (source, exc)) from None

    def _lookups(self, name: str) -> list[dict[str, str]]:
        lookups = []
        if self.iso.has_rock_ridge():
            lookups.append({'rr_path': '/' + name})
        if self.iso.has_joliet():
            lookups.append({'joliet_path': '/' + name})
        stem, dot, ext = name.upper().replace('-', '_').rpartition('.')
        plain = '/%s.%s;1' % (stem, ext) if dot else '/%s.;1' % ext
        lookups.append({'iso_path': plain})
        return lookups

    def read(self, name: str) -> bytes | None:
        for lookup in self._lookups(name):
            try:
                record = self.iso.get_record(**lookup)
            except Exception:  # pylint: disable=broad-exception-caught  # pycdlib: "Could not find path"
                continue
            if record.is_dir():
                continue
            if record.get_data_length() > MAX_FILE_BYTES:
                raise MediumError('%s on %s is larger than %d bytes' % (name, self.source, MAX_FILE_BYTES))
            out = io.BytesIO()
            try:
                self.iso.get_file_from_iso_fp(out, **lookup)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                raise MediumError('cannot read %s from %s: %s' % (name, self.source, exc)) from None
            return out.getvalue()
        return None

    def close(self) -> None:
        try:
            self.iso.close()
        except Exception:  # pylint: disable=broad-exception-caught  # closing twice is harmless
            pass


class MtoolsReader(MediumReader):
    """FAT read with GNU mtools (``mcopy``): works on image files and block devices, no mount."""

    def __init__(self, source: str) -> None:
        if shutil.which('mcopy') is None:
            raise MediumError('reading the FAT medium %s needs mtools (mcopy), or --reader mount' % source)
        self.source = source
        self.env = dict(os.environ, **_MTOOLS_ENV)

    def read(self, name: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix='provisioner-fat-') as work:
            dest = os.path.join(work, 'file')
            proc = subprocess.run(['mcopy', '-n', '-i', self.source, '::/' + name, dest], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0 or not os.path.isfile(dest):
                output = proc.stdout.decode('utf-8', 'replace')
                if 'not found' in output.lower() or 'no match' in output.lower():
                    return None
                raise MediumError('cannot read %s from %s: %s' % (name, self.source, output.strip() or 'mcopy exit %d' % proc.returncode))
            if os.path.getsize(dest) > MAX_FILE_BYTES:
                raise MediumError('%s on %s is larger than %d bytes' % (name, self.source, MAX_FILE_BYTES))
            with open(dest, 'rb') as handle:
                return handle.read()


class XorrisoReader(MediumReader):
    """ISO 9660 read with xorriso (Rock Ridge names), for systems without pycdlib."""

    def __init__(self, source: str) -> None:
        if shutil.which('xorriso') is None:
            raise MediumError('reading the ISO medium %s needs pycdlib or xorriso, or --reader mount' % source)
        self.source = source

    def read(self, name: str) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix='provisioner-iso-') as work:
            dest = os.path.join(work, 'file')
            proc = subprocess.run(['xorriso', '-osirrox', 'on', '-indev', self.source, '-extract', '/' + name, dest],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            if not os.path.isfile(dest):
                output = proc.stdout.decode('utf-8', 'replace')
                if 'no such file' in output.lower() or 'not found' in output.lower():
                    return None
                raise MediumError('cannot read %s from %s: %s' % (name, self.source, output.strip()[-500:]))
            if os.path.getsize(dest) > MAX_FILE_BYTES:
                raise MediumError('%s on %s is larger than %d bytes' % (name, self.source, MAX_FILE_BYTES))
            with open(dest, 'rb') as handle:
                return handle.read()


class MountReader(MediumReader):
    """Mount the medium read-only with the kernel (iso9660 or vfat) and read files from the mount."""

    def __init__(self, source: str, fmt: str | None) -> None:
        self.source = source
        self.mountpoint = tempfile.mkdtemp(prefix='provisioner-medium-')
        fstype = {'iso': 'iso9660', 'fat': 'vfat'}.get(fmt or '', 'auto')
        proc = subprocess.run(['mount', '-o', 'ro,nodev,nosuid,noexec', '-t', fstype, source, self.mountpoint],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            os.rmdir(self.mountpoint)
            raise MediumError('cannot mount %s read-only (%s): %s' % (source, fstype, proc.stdout.decode('utf-8', 'replace').strip()))

    def read(self, name: str) -> bytes | None:
        path = os.path.join(self.mountpoint, name)
        if not os.path.isfile(path):
            return None
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise MediumError('%s on %s is larger than %d bytes' % (name, self.source, MAX_FILE_BYTES))
        with open(path, 'rb') as handle:
            return handle.read()

    def close(self) -> None:
        if os.path.ismount(self.mountpoint):
            subprocess.run(['umount', self.mountpoint], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.rmdir(self.mountpoint)
        except OSError:
            pass


def open_medium(source: str, reader: str = 'auto') -> MediumReader:
    """A reader for ``source`` (device or image file); ``reader`` is one of ``READERS``."""
    if reader not in READERS:
        raise MediumError('unknown reader %r (use one of %s)' % (reader, ', '.join(READERS)))
    head = _read_head(source)
    fmt = detect_format(head)
    if reader == 'mount':
        return MountReader(source, fmt)
    if fmt is None:
        raise MediumError('%s holds neither an ISO 9660 nor a FAT filesystem: is it the task medium built by task_iso?' % source)
    if reader in ('pycdlib', 'xorriso') or (reader == 'auto' and fmt == 'iso'):
        if fmt != 'iso':
            raise MediumError('%s is FAT, not ISO 9660: use --reader mtools' % source)
        if reader == 'pycdlib' or (reader == 'auto' and HAS_PYCDLIB):
            return PycdlibReader(source)
        if reader == 'auto' and shutil.which('xorriso') is None:
            return MountReader(source, fmt)
        return XorrisoReader(source)
    if fmt != 'fat':
        raise MediumError('%s is ISO 9660, not FAT: use --reader pycdlib' % source)
    if reader == 'auto' and shutil.which('mcopy') is None:
        return MountReader(source, fmt)
    return MtoolsReader(source)


# ---------------------------------------------------------------------------------------------------
# discovery


def _label_matches(path: str, label: str) -> bool:
    try:
        head = _read_head(path)
    except MediumError:
        return False
    found = volume_label(head)
    return found is not None and found.upper() == label.upper()


def _by_label(label: str) -> str | None:
    link = os.path.join('/dev/disk/by-label', label)
    if os.path.exists(link):
        return os.path.realpath(link)
    if shutil.which('blkid'):
        proc = subprocess.run(['blkid', '-l', '-o', 'device', '-t', 'LABEL=' + label], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=False)
        device = proc.stdout.decode('utf-8', 'replace').strip()
        if proc.returncode == 0 and device:
            return device
    return None


def _removable_candidates(sys_block: str = '/sys/block') -> list[str]:
    """CD drives and removable disks (BMC virtual media shows up as either), whole devices only."""
    found = []
    for entry in sorted(glob.glob(os.path.join(sys_block, '*'))):
        name = os.path.basename(entry)
        removable = ''
        try:
            with open(os.path.join(entry, 'removable'), encoding='ascii') as handle:
                removable = handle.read().strip()
        except OSError:
            pass
        if name.startswith('sr') or removable == '1':
            found.append('/dev/' + name)
    return found


def find_medium(label: str = DEFAULT_LABEL, default_device: str = DEFAULT_DEVICE, timeout: float = 90.0, interval: float = 1.0,
                sleep: t.Callable[[float], None] = time.sleep) -> str:
    """Path of the task medium's device, polling until ``timeout`` while udev creates device nodes."""
    deadline = time.monotonic() + timeout
    while True:
        device = _by_label(label)
        if device:
            return device
        if os.path.exists(default_device) and detect_format(_read_head_quiet(default_device)) is not None:
            return default_device
        for candidate in _removable_candidates():
            if os.path.exists(candidate) and _label_matches(candidate, label):
                return candidate
        if time.monotonic() >= deadline:
            raise MediumError('no task medium found within %d s: no filesystem labelled %s, nothing readable at %s and no CD or '
                              'removable disk with that label (is the task ISO inserted as the second virtual CD?)'
                              % (timeout, label, default_device))
        sleep(interval)


def _read_head_quiet(path: str) -> bytes:
    try:
        return _read_head(path)
    except MediumError:
        return b''


def wait_for_path(path: str, timeout: float, interval: float = 1.0, sleep: t.Callable[[float], None] = time.sleep) -> None:
    """Wait for a device node given with --medium; image files must exist at once."""
    deadline = time.monotonic() + (timeout if path.startswith('/dev/') else 0)
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            raise MediumError('task medium %s does not exist' % path)
        sleep(interval)
