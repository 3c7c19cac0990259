# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_esxi_iso: the boot.cfg edit, and the in-place remaster of ISOs written here by pycdlib (an independent writer and
reader); xorriso, GRUB and QEMU are in tests/integration/plugins/modules/test_esxi_installer_iso.py."""

from __future__ import annotations

import io
import struct

import pycdlib
import pytest

from ansible_collections.l3metal.provision.plugins.module_utils import _esxi_iso as esxi

KS = {'ks': 'cdrom:/KS.CFG'}
BOOT_CFG = (b'bootstate=0\ntitle=Loading ESXi installer\ntimeout=5\nprefix=\nkernel=/b.b00\nkernelopt=runweasel cdromBoot\n'
            b'modules=/jumpstrt.gz --- /useropts.gz --- /features.gz --- /k.b00 --- /s.v00\nbuild=8.0.3-0.0.24022510\nupdated=0\n')


# ---------------------------------------------------------------------------------------------------
# boot.cfg


@pytest.mark.parametrize('before, after', [
    pytest.param(b'kernelopt=runweasel cdromBoot\n', b'kernelopt=runweasel cdromBoot ks=cdrom:/KS.CFG\n', id='appended'),
    pytest.param(b'kernelopt=runweasel ks=http://old/ks.cfg cdromBoot\n', b'kernelopt=runweasel ks=cdrom:/KS.CFG cdromBoot\n',
                 id='replaced-in-place'),
    pytest.param(b'kernelopt=ks=usb:/A.CFG runweasel  ks=cdrom:/B.CFG cdromBoot ks\n', b'kernelopt=ks=cdrom:/KS.CFG runweasel cdromBoot\n',
                 id='duplicates-dropped'),
    pytest.param(b'kernelopt=ksdevice=vmnic1 runweasel\n', b'kernelopt=ksdevice=vmnic1 runweasel ks=cdrom:/KS.CFG\n', id='ksdevice-is-not-ks'),
    pytest.param(b'kernelopt=\n', b'kernelopt=ks=cdrom:/KS.CFG\n', id='empty'),
    pytest.param(b'kernelopt=runweasel   \n', b'kernelopt=runweasel ks=cdrom:/KS.CFG   \n', id='trailing-spaces-kept'),
    pytest.param(b'kernel=/b.b00\nmodules=/a --- /b\n', b'kernel=/b.b00\nkernelopt=ks=cdrom:/KS.CFG\nmodules=/a --- /b\n', id='no-kernelopt-line'),
    pytest.param(b'title=x', b'title=x\nkernelopt=ks=cdrom:/KS.CFG\n', id='no-kernel-line-no-final-newline'),
    pytest.param(b'kernel=/b.b00\r\nkernelopt=cdromBoot\r\n', b'kernel=/b.b00\r\nkernelopt=cdromBoot ks=cdrom:/KS.CFG\r\n', id='crlf'),
])
def test_edit_boot_cfg(before, after):
    assert esxi.edit_boot_cfg(before, KS) == after
    assert esxi.edit_boot_cfg(after, KS) == after  # a second edit changes nothing


def test_edit_touches_only_the_kernelopt_line():
    data = BOOT_CFG.replace(b'title=Loading ESXi installer', b'title=Caf\xe9 \xff')  # bytes that are not UTF-8 survive
    edited = esxi.edit_boot_cfg(data, KS)
    old, new = data.split(b'\n'), edited.split(b'\n')
    assert [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [5]
    assert new[5] == b'kernelopt=runweasel cdromBoot ks=cdrom:/KS.CFG'


def test_kernel_options_are_set_after_ks_and_replace_their_name():
    options = esxi.check_kernel_options('usb:/KS.CFG', ['allowLegacyCPU=true', 'noIOMMU', 'systemMediaSize=min'])
    assert list(options) == ['ks', 'allowLegacyCPU', 'noIOMMU', 'systemMediaSize']
    edited = esxi.edit_boot_cfg(b'kernelopt=runweasel allowLegacyCPU=false cdromBoot\n', options)
    assert edited == b'kernelopt=runweasel allowLegacyCPU=true cdromBoot ks=usb:/KS.CFG noIOMMU systemMediaSize=min\n'


@pytest.mark.parametrize('kickstart, extra, message', [
    pytest.param('cdrom:KS.CFG', [], 'kickstart: ', id='no-slash'),
    pytest.param('floppy:/KS.CFG', [], 'kickstart: ', id='unknown-scheme'),
    pytest.param('cdrom:/KS.CFG --- /x', [], 'kickstart: ', id='space'),
    pytest.param('cdrom:/KS.CFG', ['a b'], "kernel_options: 'a b'", id='option-with-space'),
    pytest.param('cdrom:/KS.CFG', ['ks=usb:/KS.CFG'], 'kickstart option', id='ks-as-option'),
    pytest.param('cdrom:/KS.CFG', ['x=1', 'x=2'], 'x is given twice', id='twice'),
])
def test_bad_options_name_the_option(kickstart, extra, message):
    with pytest.raises(esxi.EsxiIsoError, match=message.replace('(', r'\(')):
        esxi.check_kernel_options(kickstart, extra)


def test_http_kickstart_is_accepted():
    assert esxi.check_kernel_options('https://10.1.1.10:8443/media/ks.cfg') == {'ks': 'https://10.1.1.10:8443/media/ks.cfg'}


def test_cache_key_covers_input_options_and_method():
    base = esxi.cache_key('a' * 64, KS, 'auto')
    assert base == esxi.cache_key('A' * 64, dict(KS), 'auto')
    assert len({base, esxi.cache_key('b' * 64, KS, 'auto'), esxi.cache_key('a' * 64, {'ks': 'usb:/KS.CFG'}, 'auto'),
                esxi.cache_key('a' * 64, KS, 'xorriso'), esxi.cache_key('a' * 64, dict(KS, noIOMMU=None), 'auto')}) == 5


def test_output_name():
    assert esxi.output_name('VMware-VMvisor-Installer-8.0U3-24022510.x86_64', 'f' * 64) == \
        'VMware-VMvisor-Installer-8.0U3-24022510.x86_64-ks-ffffffffffffffff.iso'
    assert esxi.output_name('../a b/c?', '0' * 64) == 'a_b_c-ks-0000000000000000.iso'
    assert esxi.default_stem('https://mirror/x/ESXi-8.ISO?token=1') == 'ESXi-8'


# ---------------------------------------------------------------------------------------------------
# in place, on ISOs written by pycdlib


BOOT_CFG_UEFI = BOOT_CFG.replace(b'prefix=\n', b'prefix=/\n')


def make_iso(path, bios=BOOT_CFG, uefi=BOOT_CFG_UEFI, joliet=True, udf=False, eltorito=True):
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3 if joliet else None, rock_ridge='1.09', vol_ident='ESXI', udf='2.60' if udf else None)
    files = {'/BOOT.CFG': bios, '/EFI/BOOT/BOOT.CFG': uefi, '/B.B00': b'kernel' * 1000, '/ISOLINUX.BIN': b'\xfa' * 2048,
             '/EFIBOOT.IMG': b'\x00' * 4096}
    iso.add_directory('/EFI', rr_name='EFI', joliet_path='/EFI' if joliet else None, udf_path='/EFI' if udf else None)
    iso.add_directory('/EFI/BOOT', rr_name='BOOT', joliet_path='/EFI/BOOT' if joliet else None, udf_path='/EFI/BOOT' if udf else None)
    for name, data in files.items():
        iso.add_fp(io.BytesIO(data), len(data), name + ';1', rr_name=name.rsplit('/', 1)[1].lower(),
                   joliet_path=name if joliet else None, udf_path=name if udf else None)
    if eltorito:
        iso.add_eltorito('/ISOLINUX.BIN;1', bootcatfile='/BOOT.CAT;1', boot_load_size=4)
        iso.add_eltorito('/EFIBOOT.IMG;1', efi=True)
    iso.write(str(path))
    iso.close()
    return files


def read_all_trees(path, name):
    """``name`` read by pycdlib through the ISO 9660, Joliet and Rock Ridge trees (file names are lower case in Rock Ridge)."""
    directory, _sep, base = name.rpartition('/')
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        views = {}
        for key, value in (('iso_path', name + ';1'), ('joliet_path', name), ('rr_path', directory + '/' + base.lower())):
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, **{key: value})
            views[key] = out.getvalue()
        return views
    finally:
        iso.close()


def changed_ranges(a: bytes, b: bytes) -> list[tuple[int, int]]:
    ranges, start = [], None
    for index in range(len(a)):
        if a[index] != b[index]:
            start = index if start is None else start
        elif start is not None:
            ranges.append((start, index))
            start = None
    return ranges + ([(start, len(a))] if start is not None else [])


def test_layout_finds_every_tree_and_the_boot_entries(tmp_path):
    make_iso(tmp_path / 'in.iso')
    with open(tmp_path / 'in.iso', 'rb') as fp:
        layout = esxi.read_layout(fp)
    assert layout.trees == ['iso9660', 'joliet'] and not layout.udf
    assert [entry.platform for entry in layout.boot_entries] == [0, 0xef]
    record = esxi.find_file(layout, '/efi/boot/boot.cfg')
    assert record.raw_path == '/EFI/BOOT/BOOT.CFG;1' and record.size == len(BOOT_CFG) + 1
    assert [r.path for r in layout.records if r.extent == record.extent] == ['/EFI/BOOT/BOOT.CFG', '/EFI/BOOT/BOOT.CFG']


def test_in_place_changes_the_two_files_and_their_sizes_only(tmp_path):
    make_iso(tmp_path / 'in.iso')
    original = (tmp_path / 'in.iso').read_bytes()
    plan = esxi.plan(str(tmp_path / 'in.iso'), KS)
    written = esxi.remaster(str(tmp_path / 'in.iso'), None, str(tmp_path / 'out.iso'), plan, 'auto', str(tmp_path))
    assert written.method == 'in_place' and written.in_place_refused is None
    result = (tmp_path / 'out.iso').read_bytes()
    assert len(result) == len(original)
    with open(tmp_path / 'in.iso', 'rb') as fp:
        layout = esxi.read_layout(fp)
    allowed = []
    for path in esxi.BOOT_CFG_PATHS:
        record = esxi.find_file(layout, path)
        allowed.append((record.extent * 2048, record.extent * 2048 + 2048))
        allowed += [(other.offset + 10, other.offset + 18) for other in layout.records if other.extent == record.extent]
    ranges = changed_ranges(original, result)
    assert ranges and all(any(lo <= start and end <= hi for lo, hi in allowed) for start, end in ranges), ranges
    for path in esxi.BOOT_CFG_PATHS:  # pycdlib, another reader, sees the new file through every tree
        views = read_all_trees(tmp_path / 'out.iso', path)
        assert set(views) == {'iso_path', 'joliet_path', 'rr_path'}
        assert all(view == plan.after[path] for view in views.values())
        assert b'kernelopt=runweasel cdromBoot ks=cdrom:/KS.CFG\n' in plan.after[path]


def test_without_the_size_fields_the_check_fails(tmp_path):
    """Negative control: data written but the directory records left at the old size is caught by verify()."""
    make_iso(tmp_path / 'in.iso')
    plan = esxi.plan(str(tmp_path / 'in.iso'), KS)
    writes = [w for w in esxi.plan_in_place(plan.layout, plan.after) if len(w[1]) != 8]
    (tmp_path / 'out.iso').write_bytes((tmp_path / 'in.iso').read_bytes())
    with open(tmp_path / 'out.iso', 'r+b') as fp:
        esxi.apply_writes(fp, writes)
    with pytest.raises(esxi.EsxiIsoError, match='does not hold the new /BOOT.CFG'):
        esxi.verify(str(tmp_path / 'out.iso'), plan.after, plan.layout.boot_entries, 'in_place')


def test_a_boot_cfg_that_outgrows_its_block_is_not_edited_in_place(tmp_path):
    full = BOOT_CFG + b'#' * (2048 - len(BOOT_CFG) - 4) + b'\n'
    make_iso(tmp_path / 'in.iso', bios=full, uefi=full)
    plan = esxi.plan(str(tmp_path / 'in.iso'), KS)
    with pytest.raises(esxi.NotInPlace, match='does not fit in the 1 blocks'):
        esxi.plan_in_place(plan.layout, plan.after)
    with pytest.raises(esxi.NotInPlace, match='method in_place: .* use method xorriso or auto'):
        esxi.remaster(str(tmp_path / 'in.iso'), None, str(tmp_path / 'out.iso'), plan, 'in_place', str(tmp_path))


def test_udf_is_not_edited_in_place(tmp_path):
    make_iso(tmp_path / 'in.iso', udf=True, eltorito=False)
    with open(tmp_path / 'in.iso', 'rb') as fp:
        layout = esxi.read_layout(fp)
    assert layout.udf
    with pytest.raises(esxi.NotInPlace, match='UDF'):
        esxi.plan_in_place(layout, {'/BOOT.CFG': b'x'})


def test_shared_data_with_two_contents_is_not_edited_in_place(tmp_path):
    make_iso(tmp_path / 'in.iso')
    with open(tmp_path / 'in.iso', 'rb') as fp:
        layout = esxi.read_layout(fp)
    efi = esxi.find_file(layout, '/EFI/BOOT/BOOT.CFG')
    shared = [record._replace(extent=efi.extent, size=efi.size) if record.path == '/BOOT.CFG' else record for record in layout.records]
    with pytest.raises(esxi.NotInPlace, match='share their data'):
        esxi.plan_in_place(layout._replace(records=shared), {'/BOOT.CFG': b'a', '/EFI/BOOT/BOOT.CFG': b'b'})


def test_an_iso_without_the_uefi_boot_cfg_is_refused(tmp_path):
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident='NOTESXI')
    iso.add_fp(io.BytesIO(BOOT_CFG), len(BOOT_CFG), '/BOOT.CFG;1')
    iso.write(str(tmp_path / 'in.iso'))
    iso.close()
    with pytest.raises(esxi.EsxiIsoError, match='/EFI/BOOT/BOOT.CFG is not on the ISO: not an ESXi installer ISO'):
        esxi.plan(str(tmp_path / 'in.iso'), KS)


def test_not_an_iso_is_refused(tmp_path):
    (tmp_path / 'x.iso').write_bytes(b'\0' * 40000)
    with pytest.raises(esxi.EsxiIsoError, match='not an ISO image'):
        esxi.plan(str(tmp_path / 'x.iso'), KS)


def test_volume_date_is_read_as_utc():
    field = b'2024061512300000' + struct.pack('b', 8)  # 12:30 at GMT+2 (8 x 15 minutes)
    assert esxi._vd_epoch(field) == 1718447400
