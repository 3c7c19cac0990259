# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""esxi_installer_iso in-process on ISOs written by pycdlib: cache, check mode, checksum, bad input. The stand-in
installer ISO, URLs, xorriso and QEMU boots are in the integration tests."""

from __future__ import annotations

import hashlib
import os

from ansible_collections.l3metal.provision.plugins.modules import esxi_installer_iso
from ansible_collections.l3metal.provision.tests.unit.plugins.module_utils.test_esxi_iso import make_iso


def stock(tmp_path):
    make_iso(tmp_path / 'VMware-VMvisor-Installer-8.0U3.x86_64.iso')
    (tmp_path / 'media').mkdir()
    return tmp_path / 'VMware-VMvisor-Installer-8.0U3.x86_64.iso', tmp_path / 'media'


def test_writes_once_then_finds_its_copy(run_module, tmp_path):
    src, media = stock(tmp_path)
    first = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media)})
    assert first.result['changed'] and first.result['method'] == 'in_place' and not first.result['cached']
    assert first.result['src_sha256'] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert first.result['file_name'].startswith('VMware-VMvisor-Installer-8.0U3.x86_64-ks-')
    assert first.result['kernelopt'] == {'/BOOT.CFG': 'runweasel cdromBoot ks=cdrom:/KS.CFG', '/EFI/BOOT/BOOT.CFG': 'runweasel cdromBoot ks=cdrom:/KS.CFG'}
    assert [entry['platform'] for entry in first.result['boot_entries']] == ['bios', 'uefi']
    assert sorted(os.listdir(media)) == [first.result['file_name']]  # no temporary file left
    assert os.stat(first.result['path']).st_mode & 0o777 == 0o644
    second = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media)})
    assert not second.result['changed'] and second.result['cached'] and second.result['path'] == first.result['path']
    assert second.result['kernelopt'] == first.result['kernelopt']  # read from the copy


def test_with_its_sha256_the_source_is_not_even_read(run_module, tmp_path):
    src, media = stock(tmp_path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    first = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media), 'sha256': digest.upper()})
    assert first.result['changed']
    src.write_bytes(b'not the ISO any more')  # read, it would fail the checksum
    second = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media), 'sha256': digest})
    assert not second.result['changed'] and second.result['cached']


def test_other_options_are_another_file(run_module, tmp_path):
    src, media = stock(tmp_path)
    cdrom = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media)})
    usb = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media), 'kickstart': 'usb:/KS.CFG', 'kernel_options': ['allowLegacyCPU=true']})
    assert usb.result['changed'] and usb.result['path'] != cdrom.result['path']
    assert usb.result['kernelopt']['/BOOT.CFG'] == 'runweasel cdromBoot ks=usb:/KS.CFG allowLegacyCPU=true'
    assert sorted(os.listdir(media)) == sorted([cdrom.result['file_name'], usb.result['file_name']])


def test_check_mode_says_what_it_would_write_and_writes_nothing(run_module, tmp_path):
    src, media = stock(tmp_path)
    check = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media)}, check_mode=True, diff=True)
    assert check.result['changed'] and not os.listdir(media)
    assert check.result['kernelopt']['/EFI/BOOT/BOOT.CFG'] == 'runweasel cdromBoot ks=cdrom:/KS.CFG'
    [bios, uefi] = check.result['diff']
    assert bios['before_header'] == '/BOOT.CFG' and 'kernelopt=runweasel cdromBoot\n' in bios['before']
    assert 'kernelopt=runweasel cdromBoot ks=cdrom:/KS.CFG\n' in uefi['after']
    real = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media)})
    assert real.result['path'] == check.result['path']


def test_check_mode_does_not_download(run_module, tmp_path):
    _src, media = stock(tmp_path)
    check = run_module(esxi_installer_iso, {'src': 'http://127.0.0.1:9/nothing-listens-here.iso', 'dest_dir': str(media)}, check_mode=True)
    assert check.result['changed'] and check.result['path'] is None and not check.result['downloaded']


def test_a_wrong_sha256_writes_nothing(run_module, tmp_path):
    src, media = stock(tmp_path)
    outcome = run_module(esxi_installer_iso, {'src': str(src), 'dest_dir': str(media), 'sha256': '0' * 64})
    assert outcome.failed and outcome.result['msg'].startswith('sha256: %s has SHA-256 ' % src) and 'nothing written' in outcome.result['msg']
    assert os.listdir(media) == []


def test_bad_input_names_the_option(run_module, tmp_path):
    src, media = stock(tmp_path)
    cases = [
        ({'src': str(src), 'dest_dir': str(tmp_path / 'missing')}, 'dest_dir: '),
        ({'src': str(tmp_path / 'missing.iso'), 'dest_dir': str(media)}, 'src: '),
        ({'src': str(src), 'dest_dir': str(media), 'sha256': 'abc'}, 'sha256: '),
        ({'src': str(src), 'dest_dir': str(media), 'kickstart': 'ks.cfg'}, 'kickstart: '),
        ({'src': str(src), 'dest_dir': str(media), 'timeout': 0}, 'timeout: '),
    ]
    for args, prefix in cases:
        outcome = run_module(esxi_installer_iso, args)
        assert outcome.failed and outcome.result['msg'].startswith(prefix), (args, outcome.result['msg'])
    assert os.listdir(media) == []


def test_not_an_esxi_iso(run_module, tmp_path):
    (tmp_path / 'media').mkdir()
    (tmp_path / 'other.iso').write_bytes(b'\0' * 65536)
    outcome = run_module(esxi_installer_iso, {'src': str(tmp_path / 'other.iso'), 'dest_dir': str(tmp_path / 'media')})
    assert outcome.failed and 'not an ISO image' in outcome.result['msg'] and os.listdir(tmp_path / 'media') == []
