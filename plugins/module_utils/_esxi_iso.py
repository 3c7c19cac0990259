# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remaster a VMware ESXi installer ISO so that the installer starts its kickstart by itself.

The stock installer boots with ``kernelopt=runweasel cdromBoot`` and waits for a keystroke.  ESXi's
boot loaders read the kernel options from ``boot.cfg``: ``mboot.c32`` (BIOS, through isolinux) reads
``/BOOT.CFG`` and ``mboot64.efi`` (UEFI, as ``/EFI/BOOT/BOOTX64.EFI``) reads ``/EFI/BOOT/BOOT.CFG``.
Both get ``ks=<where the kickstart is>`` (an existing ``ks=`` is replaced) and any other option given.

Two ways to write the copy, both keeping the ISO bootable in BIOS and UEFI:

``in_place`` (the default when possible)
    The copy is the input byte for byte except the two files' data and the size fields of the
    directory records that point to them (ISO 9660 and Joliet trees; Rock Ridge stores no size).
    The El Torito catalog, the boot images (with their boot info tables), any system area and
    every other file keep their bytes and their places.  Possible when each new ``boot.cfg`` fits
    in the 2048-byte blocks the old one occupies (it always has room for a few dozen bytes:
    ESXi's is 1-2 KiB) and nothing else shares those blocks; the ISO has no UDF tree.

``xorriso``
    A new image written by xorriso from the input, with ``-boot_image any replay`` (the El Torito
    entries, the EFI image and the system area as the input had them; boot info tables are
    recomputed for the new places of the files).  Reproducible: ``SOURCE_DATE_EPOCH`` is the input
    volume's creation date.

Either way the copy is read back with pycdlib, an ISO reader independent of the writer above:
every tree must show the new ``boot.cfg`` and the El Torito entries must be those of the input.

Standard library plus pycdlib (already required for the task media); xorriso only for its method.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import typing as t

try:
    import pycdlib
    HAS_PYCDLIB = True
    PYCDLIB_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_PYCDLIB = False
    PYCDLIB_IMPORT_ERROR = exc

SECTOR = 2048
# Where ESXi's boot loaders read their configuration: BIOS first, then UEFI.
BOOT_CFG_PATHS = ('/BOOT.CFG', '/EFI/BOOT/BOOT.CFG')
KS_ISO = 'cdrom:/KS.CFG'   # the kickstart on a virtual CD (the task ISO: KS.CFG in its ISO 9660 tree)
KS_USB = 'usb:/KS.CFG'     # the kickstart on the FAT task medium in the removable (USB) slot
METHODS = ('auto', 'in_place', 'xorriso')
# Part of the cache key: bump it when the same inputs would now give a different image.
REMASTER_VERSION = 1
FALLBACK_EPOCH = 1577836800  # 2020-01-01T00:00:00Z, when the input volume has no usable creation date

_KS_VALUE = re.compile(r'^(?:(?:cdrom|usb):/[A-Za-z0-9._/-]+|(?:https?|ftp|nfs|file)://[^\s]+)$')
_OPTION = re.compile(r'^[A-Za-z][A-Za-z0-9_.-]*(?:=[^\s]*)?$')
_NAME_UNSAFE = re.compile(r'[^A-Za-z0-9._-]+')
_EL_TORITO_ID = b'EL TORITO SPECIFICATION'
_JOLIET_ESCAPES = (b'%/@', b'%/C', b'%/E')
_LBA_LINE = re.compile(r"^File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'(.*)'\s*$")


class EsxiIsoError(Exception):
    """The installer ISO cannot be remastered; the message names the option or file at fault."""


class NotInPlace(EsxiIsoError):
    """The in-place method cannot do this edit (the reason says why); another method may."""


# ---------------------------------------------------------------------------------------------------
# boot.cfg


def check_kernel_options(kickstart: str, extra: t.Sequence[str] = ()) -> dict[str, str | None]:
    """The options to set, in order (``ks`` first): ``{'ks': 'cdrom:/KS.CFG', 'allowLegacyCPU': 'true', 'noIOMMU': None}``."""
    if not _KS_VALUE.match(kickstart or ''):
        raise EsxiIsoError('kickstart: %r is not a ks= location ESXi reads: use cdrom:/KS.CFG, usb:/KS.CFG or an http(s):// URL' % kickstart)
    options: dict[str, str | None] = {'ks': kickstart}
    for item in extra:
        if not isinstance(item, str) or not _OPTION.match(item):
            raise EsxiIsoError('kernel_options: %r is not a boot option (name or name=value, no spaces)' % (item,))
        name, sep, value = item.partition('=')
        if name == 'ks':
            raise EsxiIsoError('kernel_options: give the kickstart location with the kickstart option, not as %r' % item)
        if name in options:
            raise EsxiIsoError('kernel_options: %s is given twice' % name)
        options[name] = value if sep else None
    return options


def _token(name: str, value: str | None) -> str:
    return name if value is None else '%s=%s' % (name, value)


def _set_options(value: str, options: t.Mapping[str, str | None]) -> str:
    """``kernelopt`` value with ``options`` set: each replaces the first token of its name in place, drops
    further ones, or is appended; every other token and the spacing between them stay as they were."""
    pieces = re.split(r'(\s+)', value)  # tokens at even indices, the whitespace between them at odd ones
    placed: set[str] = set()
    keep: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0 and piece:
            name = piece.split('=', 1)[0]
            if name in options:
                if name in placed:
                    if keep and keep[-1].isspace():
                        keep.pop()  # drop the duplicate with the space before it
                    continue
                placed.add(name)
                piece = _token(name, options[name])
        keep.append(piece)
    text = ''.join(keep)
    missing = [_token(name, option) for name, option in options.items() if name not in placed]
    if missing:
        stripped = text.rstrip()
        text = stripped + (' ' if stripped else '') + ' '.join(missing) + text[len(stripped):]
    return text


def edit_boot_cfg(data: bytes, options: t.Mapping[str, str | None]) -> bytes:
    """``boot.cfg`` with ``options`` in its ``kernelopt=`` line (added after ``kernel=``, or at the end, if it has none).

    Bytes are read as Latin-1, so nothing but the edited line can change; line endings are kept.
    """
    text = data.decode('latin-1')
    lines = text.splitlines(keepends=True)
    newline = '\r\n' if '\r\n' in text else '\n'
    for index, line in enumerate(lines):
        body = line.rstrip('\r\n')
        if body.startswith('kernelopt='):
            lines[index] = 'kernelopt=' + _set_options(body[len('kernelopt='):], options) + line[len(body):]
            break
    else:
        new_line = 'kernelopt=' + _set_options('', options) + newline
        after = next((i + 1 for i, line in enumerate(lines) if line.startswith('kernel=')), len(lines))
        if after == len(lines) and lines and not lines[-1].endswith(('\n', '\r')):
            lines[-1] += newline
        lines.insert(after, new_line)
    return ''.join(lines).encode('latin-1')


def kernelopt(data: bytes | None) -> str | None:
    """The value of the ``kernelopt=`` line, or None."""
    for line in (data or b'').decode('latin-1').splitlines():
        if line.startswith('kernelopt='):
            return line[len('kernelopt='):]
    return None


# ---------------------------------------------------------------------------------------------------
# a minimal ISO 9660 reader: where each file's directory records are, byte for byte


class Record(t.NamedTuple):
    """A directory record of one file: ``offset`` is where the record starts in the image."""

    tree: str          # iso9660, joliet or enhanced
    path: str          # upper case, without ;1, for the ISO 9660 tree; as recorded for the others
    raw_path: str      # as recorded (with ;1)
    extent: int
    size: int
    flags: int
    offset: int
    system_use: bytes


class BootEntry(t.NamedTuple):
    """An El Torito boot entry: platform 0 is BIOS (x86), 0xef is UEFI."""

    platform: int
    bootable: bool
    media: int
    load_rba: int
    sectors: int


class IsoLayout(t.NamedTuple):
    records: list[Record]        # every file and directory record of every tree
    trees: list[str]
    udf: bool
    boot_catalog: int | None     # LBA of the El Torito catalog
    boot_entries: list[BootEntry]
    creation_epoch: int | None   # the primary volume's creation date


def _read_at(fp: t.BinaryIO, offset: int, length: int) -> bytes:
    fp.seek(offset)
    data = fp.read(length)
    if len(data) != length:
        raise EsxiIsoError('the image ends at byte %d, before the %d bytes at %d its structures point to' % (offset + len(data), length, offset))
    return data


def _both_endian_32(data: bytes, at: int) -> int:
    return int(struct.unpack_from('<I', data, at)[0])


def _vd_epoch(field: bytes) -> int | None:
    """A volume descriptor date (17 bytes: 16 digits and an offset from GMT in 15-minute steps) as unix seconds."""
    digits = field[:14].decode('ascii', 'replace')
    if not digits.isdigit() or digits == '0' * 14:
        return None
    try:
        stamp = calendar.timegm((int(digits[0:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]), int(digits[10:12]), int(digits[12:14])))
    except (ValueError, OverflowError):
        return None
    offset = struct.unpack('b', field[16:17])[0]
    return stamp - offset * 15 * 60


def _walk_tree(fp: t.BinaryIO, tree: str, root: bytes, joliet: bool, records: list[Record]) -> None:
    seen: set[int] = set()
    stack = [('', '', _both_endian_32(root, 2), _both_endian_32(root, 10))]
    while stack:
        parent, raw_parent, extent, size = stack.pop()
        if extent in seen:
            raise EsxiIsoError('directory at block %d is reached twice in the %s tree: not an ISO 9660 image' % (extent, tree))
        seen.add(extent)
        data = _read_at(fp, extent * SECTOR, size)
        position = 0
        while position < len(data):
            length = data[position]
            if length == 0:  # records do not cross block boundaries: go on at the next block
                position = (position // SECTOR + 1) * SECTOR
                continue
            if length < 34 or position + length > len(data):
                raise EsxiIsoError('a directory record at byte %d of block %d of the %s tree is malformed' % (position, extent, tree))
            record = data[position:position + length]
            name_length = record[32]
            name = record[33:33 + name_length]
            if name not in (b'\x00', b'\x01'):
                raw = name.decode('utf-16-be', 'replace') if joliet else name.decode('latin-1')
                text = raw.split(';', 1)[0].rstrip('.').upper() if tree == 'iso9660' else raw
                flags = record[25]
                pad = 1 if name_length % 2 == 0 else 0
                path, raw_path = parent + '/' + text, raw_parent + '/' + raw
                records.append(Record(tree, path, raw_path, _both_endian_32(record, 2), _both_endian_32(record, 10), flags,
                                      extent * SECTOR + position, record[33 + name_length + pad:]))
                if flags & 0x02:
                    stack.append((path, raw_path, _both_endian_32(record, 2), _both_endian_32(record, 10)))
            position += length


def _boot_entries(fp: t.BinaryIO, catalog: int) -> list[BootEntry]:
    data = _read_at(fp, catalog * SECTOR, SECTOR)
    if data[0] != 1 or data[0x1e:0x20] != b'\x55\xaa':
        raise EsxiIsoError('the El Torito boot catalog at block %d has no validation entry' % catalog)
    platform = data[1]
    entries = [BootEntry(platform, data[32] == 0x88, data[33], _both_endian_32(data, 40), struct.unpack_from('<H', data, 38)[0])]
    position = 64
    while position + 32 <= len(data):
        header = data[position]
        if header not in (0x90, 0x91):
            break
        section_platform, count = data[position + 1], struct.unpack_from('<H', data, position + 2)[0]
        position += 32
        for _index in range(count):
            if position + 32 > len(data):
                break
            entry = data[position:position + 32]
            if entry[0] == 0x44:  # an extension record continues the previous entry
                position += 32
                continue
            entries.append(BootEntry(section_platform, entry[0] == 0x88, entry[1], _both_endian_32(entry, 8), struct.unpack_from('<H', entry, 6)[0]))
            position += 32
        if header == 0x91:
            break
    return entries


def read_layout(fp: t.BinaryIO) -> IsoLayout:
    """Every directory record (with its place in the image), whether there is UDF, and the El Torito entries."""
    records: list[Record] = []
    trees: list[str] = []
    catalog: int | None = None
    creation: int | None = None
    sector = 16
    primary = False
    while True:
        vd = _read_at(fp, sector * SECTOR, SECTOR)
        if vd[1:6] != b'CD001':
            raise EsxiIsoError('no ISO 9660 volume descriptor at block %d: not an ISO image' % sector)
        kind = vd[0]
        if kind == 255:
            break
        if kind == 0 and vd[7:7 + len(_EL_TORITO_ID)] == _EL_TORITO_ID:
            catalog = _both_endian_32(vd, 0x47)
        elif kind in (1, 2):
            if struct.unpack_from('<H', vd, 128)[0] != SECTOR:
                raise EsxiIsoError('logical block size %d: only 2048 is supported' % struct.unpack_from('<H', vd, 128)[0])
            if kind == 1:
                tree, joliet = 'iso9660', False
                primary = True
                creation = _vd_epoch(vd[813:830])
            else:
                joliet = vd[88:91] in _JOLIET_ESCAPES
                tree = 'joliet' if joliet else 'enhanced'
            if tree not in trees:
                trees.append(tree)
                _walk_tree(fp, tree, vd[156:190], joliet, records)
        sector += 1
        if sector > 16 + 64:
            raise EsxiIsoError('no volume descriptor set terminator in the first 64 descriptors: not an ISO image')
    if not primary:
        raise EsxiIsoError('no primary volume descriptor: not an ISO 9660 image')
    udf = False
    for extra in range(sector + 1, sector + 17):  # the UDF volume recognition sequence follows the terminator
        head = _read_at(fp, extra * SECTOR, 6)
        if head[1:6] in (b'NSR02', b'NSR03'):
            udf = True
            break
        if head[1:6] not in (b'BEA01', b'TEA01', b'BOOT2', b'CD001'):
            break
    entries = _boot_entries(fp, catalog) if catalog is not None else []
    return IsoLayout(records, trees, udf, catalog, entries, creation)


def find_file(layout: IsoLayout, path: str) -> Record:
    """The ISO 9660 record of ``path`` (``/EFI/BOOT/BOOT.CFG``), matched without case and version."""
    wanted = path.upper()
    for record in layout.records:
        if record.tree == 'iso9660' and record.path == wanted and not record.flags & 0x02:
            return record
    raise EsxiIsoError('%s is not on the ISO: not an ESXi installer ISO (ESXi 6.5 and later have /BOOT.CFG and /EFI/BOOT/BOOT.CFG)' % path)


def read_file(fp: t.BinaryIO, record: Record) -> bytes:
    return _read_at(fp, record.extent * SECTOR, record.size)


def _blocks(size: int) -> int:
    return (size + SECTOR - 1) // SECTOR


def _susp_signatures(system_use: bytes) -> set[bytes]:
    found: set[bytes] = set()
    position = 0
    while position + 4 <= len(system_use):
        length = system_use[position + 2]
        if length < 4:
            break
        found.add(system_use[position:position + 2])
        position += length
    return found


def plan_in_place(layout: IsoLayout, new_files: t.Mapping[str, bytes]) -> list[tuple[int, bytes]]:
    """The writes (offset, bytes) that put ``new_files`` into the image in place; ``NotInPlace`` when they cannot."""
    if layout.udf:
        raise NotInPlace('the ISO has a UDF tree, whose file entries would keep the old sizes')
    by_extent: dict[int, tuple[Record, bytes]] = {}
    for path, data in new_files.items():
        record = find_file(layout, path)
        if record.flags & 0x80:
            raise NotInPlace('%s is recorded in several extents' % path)
        if b'ZF' in _susp_signatures(record.system_use):
            raise NotInPlace('%s is stored compressed (zisofs)' % path)
        if record.size == 0:
            raise NotInPlace('%s is empty: it has no block to write into' % path)
        if len(data) > _blocks(record.size) * SECTOR:
            raise NotInPlace('the new %s (%d bytes) does not fit in the %d blocks of the old one' % (path, len(data), _blocks(record.size)))
        if record.extent in by_extent and by_extent[record.extent][1] != data:
            raise NotInPlace('%s and %s share their data on the ISO but get different contents' % (by_extent[record.extent][0].path, path))
        by_extent[record.extent] = (record, data)
    writes: list[tuple[int, bytes]] = []
    for extent, (record, data) in sorted(by_extent.items()):
        first, last = extent, extent + _blocks(record.size)
        for other in layout.records:
            if other.extent == extent or other.size == 0:
                continue
            if other.extent < last and first < other.extent + _blocks(other.size):
                raise NotInPlace('%s (%s tree) shares blocks with %s' % (other.path, other.tree, record.path))
        for entry in layout.boot_entries:
            if first <= entry.load_rba < last:
                raise NotInPlace('an El Torito boot image starts inside %s' % record.path)
        if layout.boot_catalog is not None and first <= layout.boot_catalog < last:
            raise NotInPlace('the El Torito boot catalog lies inside %s' % record.path)
        # the data, and zeros over what is left of a longer old file; the rest of the block stays as it was
        writes.append((extent * SECTOR, data + b'\0' * max(0, record.size - len(data))))
        size_field = struct.pack('<I', len(data)) + struct.pack('>I', len(data))
        writes.extend((other.offset + 10, size_field) for other in layout.records if other.extent == extent and not other.flags & 0x02)
    return writes


def apply_writes(fp: t.BinaryIO, writes: t.Iterable[tuple[int, bytes]]) -> None:
    for offset, data in writes:
        fp.seek(offset)
        fp.write(data)
    fp.flush()


# ---------------------------------------------------------------------------------------------------
# xorriso


def _xorriso(argv: list[str], env: dict[str, str] | None = None) -> str:
    if shutil.which('xorriso') is None:
        raise EsxiIsoError('xorriso not found: method xorriso needs it (Debian/Ubuntu/Fedora package "xorriso")')
    try:
        proc = subprocess.run(['xorriso', '-abort_on', 'FAILURE', '-return_with', 'SORRY', '32'] + argv, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise EsxiIsoError('cannot run xorriso: %s' % exc) from None
    output = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise EsxiIsoError('xorriso failed (exit %d): %s' % (proc.returncode, output.strip()[-2000:]))
    return output


def xorriso_paths(image: str) -> dict[int, str]:
    """Block -> the path xorriso shows for the file there (its Rock Ridge name, else its ISO 9660 name)."""
    found: dict[int, str] = {}
    for line in _xorriso(['-indev', image, '-find', '/', '-type', 'f', '-exec', 'report_lba', '--']).splitlines():
        match = _LBA_LINE.match(line.strip())
        if match:
            found.setdefault(int(match.group(2)), match.group(5).replace("'\"'\"'", "'"))
    return found


def xorriso_remaster(src: str, dest: str, layout: IsoLayout, new_files: t.Mapping[str, bytes], work_dir: str) -> None:
    """Write ``dest``: ``src`` with ``new_files`` replaced, its boot equipment replayed by xorriso."""
    paths = xorriso_paths(src)
    epoch = layout.creation_epoch or FALLBACK_EPOCH
    # no_emul_toc: a plain image from block 0; without it xorriso writes its session at block 32 behind a copy of the
    # volume descriptors, as for multi-session media
    argv = ['-indev', src, '-outdev', dest, '-compliance', 'no_emul_toc', '-boot_image', 'any', 'replay']
    if 'joliet' in layout.trees:
        argv += ['-joliet', 'on']
    for index, (path, data) in enumerate(sorted(new_files.items())):
        record = find_file(layout, path)
        if record.extent not in paths:
            raise EsxiIsoError('xorriso does not list a file at block %d, where %s is' % (record.extent, path))
        local = os.path.join(work_dir, 'boot-%d.cfg' % index)
        with open(local, 'wb') as handle:
            handle.write(data)
        os.utime(local, (epoch, epoch))
        argv += ['-map', local, paths[record.extent]]
    with open(dest, 'wb'):
        pass  # xorriso writes only to an empty -outdev
    # SOURCE_DATE_EPOCH pins the volume dates and the image's UUID: the same input gives the same bytes
    _xorriso(argv + ['-commit'], env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), TZ='UTC'))


# ---------------------------------------------------------------------------------------------------
# reading back, independently


def pycdlib_read_back(image: str, layout: IsoLayout, paths: t.Sequence[str]) -> dict[str, dict[str, bytes]]:
    """``{path: {tree: content}}``: each path read by pycdlib through every tree it has (iso9660, joliet, rr)."""
    if not HAS_PYCDLIB:
        raise EsxiIsoError('the pycdlib Python library is required to check the remastered ISO')
    iso = pycdlib.PyCdlib()
    try:
        iso.open(image)
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise EsxiIsoError('pycdlib cannot read the written ISO: %s' % exc) from None
    try:
        result: dict[str, dict[str, bytes]] = {}
        for path in paths:
            record = find_file(layout, path)
            views: list[tuple[str, str, str]] = [('iso9660', 'iso_path', record.raw_path)]
            views += [('joliet', 'joliet_path', other.raw_path) for other in layout.records if other.tree == 'joliet' and other.extent == record.extent]
            if iso.has_rock_ridge():
                views.append(('rr', 'rr_path', iso.full_path_from_dirrecord(iso.get_record(iso_path=record.raw_path), rockridge=True)))
            contents: dict[str, bytes] = {}
            for tree, key, value in views:
                out = io.BytesIO()
                try:
                    iso.get_file_from_iso_fp(out, **{key: value})
                except pycdlib.pycdlibexception.PyCdlibException as exc:
                    raise EsxiIsoError('pycdlib cannot read %s through the %s tree of the written ISO: %s' % (value, tree, exc)) from None
                contents[tree] = out.getvalue()
            result[path] = contents
        return result
    finally:
        iso.close()


def _shape(entries: t.Sequence[BootEntry]) -> list[tuple[int, bool, int, int]]:
    """A boot entry without its block number."""
    return [(entry.platform, entry.bootable, entry.media, entry.sectors) for entry in entries]


def verify(image: str, expected: t.Mapping[str, bytes], boot_entries: t.Sequence[BootEntry], method: str) -> IsoLayout:
    """Raise ``EsxiIsoError`` unless every tree of ``image`` shows ``expected`` and its El Torito entries are ``boot_entries``.

    With the xorriso method the boot images move, so the entries are compared without their block numbers.
    """
    with open(image, 'rb') as fp:
        layout = read_layout(fp)
        for path, data in expected.items():
            if read_file(fp, find_file(layout, path)) != data:
                raise EsxiIsoError('the written ISO does not hold the new %s (read back by block)' % path)
    for path, views in pycdlib_read_back(image, layout, list(expected)).items():
        wrong = sorted(tree for tree, data in views.items() if data != expected[path])
        if wrong:
            raise EsxiIsoError('the written ISO shows another %s in its %s tree%s' % (path, ', '.join(wrong), 's' if len(wrong) > 1 else ''))
    if (_shape(layout.boot_entries) != _shape(boot_entries)) if method == 'xorriso' else (layout.boot_entries != list(boot_entries)):
        raise EsxiIsoError('the written ISO has other El Torito boot entries than the input: %s, not %s' % (layout.boot_entries, list(boot_entries)))
    return layout


# ---------------------------------------------------------------------------------------------------
# the whole job


class Plan(t.NamedTuple):
    """What a remaster of one input writes."""

    layout: IsoLayout
    before: dict[str, bytes]
    after: dict[str, bytes]


def plan(src: str, options: t.Mapping[str, str | None]) -> Plan:
    """Read the two ``boot.cfg`` of ``src`` and work out their new contents."""
    try:
        with open(src, 'rb') as fp:
            layout = read_layout(fp)
            before = {path: read_file(fp, find_file(layout, path)) for path in BOOT_CFG_PATHS}
    except OSError as exc:
        raise EsxiIsoError('src: cannot read %s: %s' % (src, exc.strerror or exc)) from None
    return Plan(layout, before, {path: edit_boot_cfg(data, options) for path, data in before.items()})


def cache_key(src_sha256: str, options: t.Mapping[str, str | None], method: str) -> str:
    """Names the output: the input's SHA-256, the options and the method asked for (not the one auto picks)."""
    doc = {'version': REMASTER_VERSION, 'src_sha256': src_sha256.lower(), 'options': [[k, v] for k, v in options.items()], 'method': method}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(',', ':')).encode('utf-8')).hexdigest()


def output_name(stem: str, key: str) -> str:
    """``<stem>-ks-<first 16 hex digits of the key>.iso``."""
    clean = _NAME_UNSAFE.sub('_', stem).strip('._-')[:120] or 'esxi-installer'
    return '%s-ks-%s.iso' % (clean, key[:16])


def default_stem(src: str) -> str:
    base = os.path.basename(src.split('?', 1)[0].split('#', 1)[0].rstrip('/')) or 'esxi-installer'
    return base[:-4] if base.lower().endswith('.iso') else base


class Written(t.NamedTuple):
    method: str
    in_place_refused: str | None   # why auto fell back to xorriso
    layout: IsoLayout


def remaster(src: str, work_copy: str | None, dest_tmp: str, the_plan: Plan, method: str, work_dir: str) -> Written:
    """Write the remastered image to ``dest_tmp``.

    ``work_copy`` is a copy of ``src`` on the destination's file system (a download lands there) that the
    in-place method patches and renames; without one, the copy is made here.
    """
    refused: str | None = None
    if method in ('auto', 'in_place'):
        try:
            writes = plan_in_place(the_plan.layout, the_plan.after)
        except NotInPlace as exc:
            if method == 'in_place':
                raise NotInPlace('method in_place: %s; use method xorriso or auto' % exc) from None
            refused = str(exc)
        else:
            if work_copy is None:
                shutil.copyfile(src, dest_tmp)
            else:
                os.replace(work_copy, dest_tmp)
            with open(dest_tmp, 'r+b') as fp:
                apply_writes(fp, writes)
            return Written('in_place', None, verify(dest_tmp, the_plan.after, the_plan.layout.boot_entries, 'in_place'))
    xorriso_remaster(work_copy or src, dest_tmp, the_plan.layout, the_plan.after, work_dir)
    return Written('xorriso', refused, verify(dest_tmp, the_plan.after, the_plan.layout.boot_entries, 'xorriso'))


def copy_hashing(reader: t.Any, writer: t.BinaryIO | None, chunk: int = 1024 * 1024) -> tuple[str, int]:
    """Read ``reader`` to its end (writing each chunk to ``writer``, if any); return (SHA-256, size)."""
    digest = hashlib.sha256()
    size = 0
    while True:
        data = reader.read(chunk)
        if not data:
            return digest.hexdigest(), size
        digest.update(data)
        size += len(data)
        if writer is not None:
            writer.write(data)


def file_sha256(path: str) -> str:
    try:
        with open(path, 'rb') as handle:
            return copy_hashing(handle, None)[0]
    except OSError as exc:
        raise EsxiIsoError('src: cannot read %s: %s' % (path, exc.strerror or exc)) from None


def temp_path(directory: str, prefix: str) -> str:
    """A new empty file in ``directory`` (hidden, ``.tmp``), on the file system of the final image."""
    fd, path = tempfile.mkstemp(dir=directory, prefix='.' + prefix + '.', suffix='.tmp')
    os.close(fd)
    return path
