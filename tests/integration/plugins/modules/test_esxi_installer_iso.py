# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""esxi_installer_iso through ansible-playbook on an installer-shaped ISO built here (l3metal_lab.esxi; the real one cannot
be had), read back with xorriso and pycdlib, and booted under QEMU (TCG) in BIOS and UEFI mode.

The boot loaders of the test ISO are a GRUB stand-in for ESXi's mboot (a simulation, labelled so in lab/l3metal_lab/esxi.py):
each reads the ``boot.cfg`` of its firmware mode from the ISO 9660 file system and prints it on the serial console.
The boot tests compare what it printed with the expected file byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from l3metal_lab.esxi import BOOT_CFG_BIOS, BOOT_CFG_UEFI, boot_standin, build_installer_iso
from l3metal_lab.httpserver import FileServer
from l3metal_lab.media import pycdlib_tree, xorriso_extract
from l3metal_lab.playbook import localhost_play, run_playbook

from ansible_collections.l3metal.provision.plugins.module_utils import _esxi_iso

KSOPT = b'kernelopt=runweasel cdromBoot\n'
TASK = 'l3metal.provision.esxi_installer_iso'
BOOT_TIMES: dict[str, float] = {}


def expected(boot_cfg: bytes, option: str = 'ks=cdrom:/KS.CFG') -> bytes:
    """The new boot.cfg, written out here rather than with the module's own edit."""
    assert boot_cfg.count(KSOPT) == 1
    return boot_cfg.replace(KSOPT, b'kernelopt=runweasel cdromBoot ' + option.encode() + b'\n')


def remaster(ansible_playbook, check: bool = False, diff: bool = False, **options):
    run = ansible_playbook(localhost_play([{'name': 'remaster', TASK: options, 'register': 'out'}]), check=check, diff=diff)
    return run, run.task('remaster')


def el_torito(image: Path) -> list[str]:
    """xorriso's report of the boot entries (platform, emulation, load size, image path, boot info table), without the
    block numbers, which move with the xorriso method."""
    out = subprocess.run(['xorriso', '-indev', str(image), '-report_el_torito', 'plain'], capture_output=True, text=True, check=True).stdout
    keep = ('El Torito boot img', 'El Torito img path', 'El Torito img opts', 'El Torito cat path')
    return [re.sub(r'\s+\d+\s*$', '', line) if line.startswith('El Torito boot img') else line
            for line in out.splitlines() if line.startswith(keep)]


def el_torito_lbas(image: Path) -> list[int]:
    out = subprocess.run(['xorriso', '-indev', str(image), '-report_el_torito', 'plain'], capture_output=True, text=True, check=True).stdout
    return [int(line.split()[-1]) for line in out.splitlines() if line.startswith('El Torito boot img :')]


@pytest.fixture
def stock(tmp_path):
    return build_installer_iso(tmp_path / 'build', tmp_path / 'VMware-VMvisor-Installer-8.0U3-24022510.x86_64.iso')


def test_in_place_changes_both_boot_cfg_exactly_and_nothing_else(ansible_playbook, stock, tmp_path):
    media = tmp_path / 'media'
    media.mkdir()
    run, task = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(media))
    run.assert_ok()
    out = Path(task.result['path'])
    assert task.changed and task.result['method'] == 'in_place' and out.parent == media
    new = {'/BOOT.CFG': expected(BOOT_CFG_BIOS), '/EFI/BOOT/BOOT.CFG': expected(BOOT_CFG_UEFI)}
    # xorriso's reading (Rock Ridge names): the two files changed exactly, every other file byte-identical
    before, after = xorriso_extract(stock.path, tmp_path / 'x-before'), xorriso_extract(out, tmp_path / 'x-after')
    assert set(before) == set(after)
    assert {name for name in after if after[name] != before[name]} == {'BOOT.CFG', 'EFI/BOOT/BOOT.CFG'}
    assert after['BOOT.CFG'] == new['/BOOT.CFG'] and after['EFI/BOOT/BOOT.CFG'] == new['/EFI/BOOT/BOOT.CFG']
    # pycdlib's reading of all three trees agrees
    for tree in ('iso9660', 'joliet', 'rr'):
        trees = pycdlib_tree(stock.path, tree), pycdlib_tree(out, tree)
        changed = {name for name in trees[1] if trees[1][name] != trees[0].get(name)}
        assert {name.upper().split(';')[0] for name in changed} == {'BOOT.CFG', 'EFI/BOOT/BOOT.CFG'}, tree
    # the boot records: the same catalog, the same images at the same blocks; and the image is the input's size
    assert el_torito(out) == el_torito(stock.path) and el_torito_lbas(out) == el_torito_lbas(stock.path)
    assert 'El Torito boot img :   2  UEFI  y   none  0x0000  0x00   2880' in el_torito(out)
    assert out.stat().st_size == stock.path.stat().st_size
    assert task.result['src_sha256'] == hashlib.sha256(stock.path.read_bytes()).hexdigest()

    again_run, again = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(media))
    again_run.assert_ok()
    assert not again.changed and again.result['cached'] and sorted(p.name for p in media.iterdir()) == [out.name]
    check_run, check = remaster(ansible_playbook, check=True, diff=True, src=str(stock.path), dest_dir=str(media), kickstart='usb:/KS.CFG')
    check_run.assert_ok()
    assert check.changed and check.result['kernelopt']['/BOOT.CFG'] == 'runweasel cdromBoot ks=usb:/KS.CFG'
    assert sorted(p.name for p in media.iterdir()) == [out.name]  # nothing written in check mode
    assert '+kernelopt=runweasel cdromBoot ks=usb:/KS.CFG' in check_run.stdout  # the diff names the change


def test_grub_standin_for_esxi_mboot_reads_the_changed_boot_cfg_bios_and_uefi(ansible_playbook, stock, tmp_path):
    """QEMU (TCG) boots the remastered ISO with SeaBIOS and with OVMF; the stand-in boot loader prints the boot.cfg of
    each mode, which must be the new one. Negative control: the stock ISO prints the old one."""
    media = tmp_path / 'media'
    media.mkdir()
    run, task = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(media))
    run.assert_ok()
    for firmware, path, original in (('bios', '/BOOT.CFG', BOOT_CFG_BIOS), ('uefi', '/EFI/BOOT/BOOT.CFG', BOOT_CFG_UEFI)):
        boot = boot_standin(Path(task.result['path']), firmware, tmp_path / 'qemu')
        BOOT_TIMES['in_place ' + firmware] = boot.seconds
        assert 'L3METAL-STANDIN-MBOOT firmware=%s' % firmware in boot.console, boot.console[-2000:]
        assert boot.boot_cfg == expected(original).decode(), boot.console[-3000:]
        control = boot_standin(stock.path, firmware, tmp_path / 'qemu-stock')
        assert control.boot_cfg == original.decode(), (path, control.console[-3000:])  # the stand-in prints what is on the ISO
    print('QEMU boots to the printed boot.cfg: %s' % {name: round(seconds, 1) for name, seconds in BOOT_TIMES.items()})


def test_the_boot_loader_reads_the_size_from_the_directory_record(stock, tmp_path):
    """Negative control for the in-place method: the data written without the new sizes in the directory records, and
    the stand-in boot loader (BIOS) prints the old number of bytes - the new option's tail is cut off."""
    the_plan = _esxi_iso.plan(str(stock.path), _esxi_iso.check_kernel_options('cdrom:/KS.CFG'))
    broken = tmp_path / 'sizes-not-updated.iso'
    broken.write_bytes(stock.path.read_bytes())
    with open(broken, 'r+b') as fp:
        _esxi_iso.apply_writes(fp, [w for w in _esxi_iso.plan_in_place(the_plan.layout, the_plan.after) if len(w[1]) != 8])
    boot = boot_standin(broken, 'bios', tmp_path / 'qemu')
    assert boot.boot_cfg == the_plan.after['/BOOT.CFG'][:len(BOOT_CFG_BIOS)].decode()
    assert boot.boot_cfg != expected(BOOT_CFG_BIOS).decode()


def test_a_boot_cfg_filling_its_block_goes_through_xorriso_and_stays_bootable(ansible_playbook, tmp_path):
    """No room in the block: auto falls back to xorriso -boot_image any replay. Both boot.cfg changed, every other file
    byte-identical except what holds block numbers - the boot catalog and the BIOS boot image's boot info table (bytes
    8-63) - and the same El Torito entries; booted under QEMU in both modes."""
    full_bios = BOOT_CFG_BIOS + b'#' * (2047 - len(BOOT_CFG_BIOS)) + b'\n'
    full_uefi = BOOT_CFG_UEFI + b'#' * (2047 - len(BOOT_CFG_UEFI)) + b'\n'
    stock = build_installer_iso(tmp_path / 'build', tmp_path / 'full.iso', boot_cfg_bios=full_bios, boot_cfg_uefi=full_uefi)
    media = tmp_path / 'media'
    media.mkdir()
    run, task = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(media))
    run.assert_ok()
    out = Path(task.result['path'])
    assert task.result['method'] == 'xorriso' and 'does not fit in the 1 blocks' in task.result['in_place_refused']
    before, after = xorriso_extract(stock.path, tmp_path / 'x-before'), xorriso_extract(out, tmp_path / 'x-after')
    assert set(before) == set(after)
    assert after['BOOT.CFG'] == expected(full_bios) and after['EFI/BOOT/BOOT.CFG'] == expected(full_uefi)
    changed = {name for name in after if after[name] != before[name]}
    # the boot catalog and the BIOS image's boot info table hold block numbers, which a new image changes
    assert changed - {'ISOLINUX.BIN', 'BOOT.CAT'} == {'BOOT.CFG', 'EFI/BOOT/BOOT.CFG'}
    if 'ISOLINUX.BIN' in changed:  # moved: its El Torito boot info table holds its new block; nothing else in it changed
        old, new = before['ISOLINUX.BIN'], after['ISOLINUX.BIN']
        assert old[:8] == new[:8] and old[64:] == new[64:]
        assert int.from_bytes(new[8:12], 'little') == 16 and int.from_bytes(new[12:16], 'little') == el_torito_lbas(out)[0]
    assert el_torito(out) == el_torito(stock.path)
    data = out.read_bytes()  # a plain image: one volume descriptor set, at block 16 (no multi-session emulation)
    assert [block for block in range(16, 80) if data[block * 2048 + 1:block * 2048 + 6] == b'CD001'] == [16, 17, 18, 19]
    for tree in ('iso9660', 'joliet', 'rr'):  # the same names in every tree
        assert set(pycdlib_tree(out, tree)) == set(pycdlib_tree(stock.path, tree)), tree
    for firmware, original in (('bios', full_bios), ('uefi', full_uefi)):
        boot = boot_standin(out, firmware, tmp_path / 'qemu')
        BOOT_TIMES['xorriso ' + firmware] = boot.seconds
        assert boot.boot_cfg == expected(original).decode(), boot.console[-3000:]
    # reproducible: the same input written again is the same bytes
    again = tmp_path / 'again'
    again.mkdir()
    run2, task2 = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(again))
    run2.assert_ok()
    assert Path(task2.result['path']).read_bytes() == out.read_bytes()
    print('QEMU boots to the printed boot.cfg: %s' % {name: round(seconds, 1) for name, seconds in BOOT_TIMES.items()})


def test_an_existing_ks_is_replaced_and_options_added(ansible_playbook, tmp_path):
    bios = BOOT_CFG_BIOS.replace(KSOPT, b'kernelopt=runweasel ks=http://old.example.com/ks.cfg cdromBoot\n')
    uefi = BOOT_CFG_UEFI.replace(KSOPT, b'kernelopt=runweasel ks=http://old.example.com/ks.cfg cdromBoot\n')
    stock = build_installer_iso(tmp_path / 'build', tmp_path / 'in.iso', boot_cfg_bios=bios, boot_cfg_uefi=uefi)
    media = tmp_path / 'media'
    media.mkdir()
    run, task = remaster(ansible_playbook, src=str(stock.path), dest_dir=str(media), kickstart='usb:/KS.CFG',
                         kernel_options=['allowLegacyCPU=true'])
    run.assert_ok()
    after = xorriso_extract(Path(task.result['path']), tmp_path / 'x')
    line = b'kernelopt=runweasel ks=usb:/KS.CFG cdromBoot allowLegacyCPU=true\n'
    assert after['BOOT.CFG'] == bios.replace(b'kernelopt=runweasel ks=http://old.example.com/ks.cfg cdromBoot\n', line)
    assert after['EFI/BOOT/BOOT.CFG'] == uefi.replace(b'kernelopt=runweasel ks=http://old.example.com/ks.cfg cdromBoot\n', line)


def test_a_url_is_streamed_checked_and_then_not_downloaded_again(ansible_playbook, stock, tmp_path):
    media = tmp_path / 'media'
    media.mkdir()
    digest = hashlib.sha256(stock.path.read_bytes()).hexdigest()
    with FileServer(stock.path.parent) as server:
        url = server.url_for(stock.path.name)
        wrong_run, wrong = remaster(ansible_playbook, src=url, dest_dir=str(media), sha256='1' * 64)
        assert wrong_run.rc == 2 and wrong.result['msg'].startswith('sha256: %s has SHA-256 %s, not 1111' % (url, digest))
        assert list(media.iterdir()) == []  # the download is removed again
        run, task = remaster(ansible_playbook, src=url, dest_dir=str(media), sha256=digest)
        run.assert_ok()
        assert task.result['downloaded'] and task.result['method'] == 'in_place' and task.result['src_sha256'] == digest
        again_run, again = remaster(ansible_playbook, src=url, dest_dir=str(media), sha256=digest)
        again_run.assert_ok()
        assert again.result['cached'] and not again.result['downloaded'] and not again.changed
        assert [(r.method, r.path) for r in server.requests] == [('GET', '/' + stock.path.name)] * 2
        missing_run, missing = remaster(ansible_playbook, src=server.url_for('nothing.iso'), dest_dir=str(media))
        assert missing_run.rc == 2 and missing.result['msg'] == 'src: HTTP 404 from %s' % server.url_for('nothing.iso')
    assert sorted(p.name for p in media.iterdir()) == [Path(task.result['path']).name]
    assert xorriso_extract(Path(task.result['path']), tmp_path / 'x')['BOOT.CFG'] == expected(BOOT_CFG_BIOS)


def test_https_needs_the_ca_unless_told_otherwise(ansible_playbook, receiver_factory, tls_files, stock, tmp_path):
    secure = receiver_factory(tls=tls_files)  # the receiver serves public media: a real https server
    (secure.media_dir / stock.path.name).write_bytes(stock.path.read_bytes())
    url = '%s/media/%s' % (secure.url, stock.path.name)
    media = tmp_path / 'media'
    media.mkdir()
    refused_run, refused = remaster(ansible_playbook, src=url, dest_dir=str(media))
    assert refused_run.rc == 2 and refused.result['msg'].startswith('src: cannot download %s: ' % url)
    assert 'CERTIFICATE_VERIFY_FAILED' in refused.result['msg'] or 'certificate' in refused.result['msg'].lower()
    assert list(media.iterdir()) == []
    run, task = remaster(ansible_playbook, src=url, dest_dir=str(media), ca_path=tls_files[2])
    run.assert_ok()
    assert task.result['downloaded'] and task.changed


def test_two_hosts_at_once_take_turns(stock, tmp_path):
    """Two hosts of one play remaster the same ISO into one directory at once: one writes it, the other finds it."""
    media = tmp_path / 'media'
    media.mkdir()
    play = [{'name': 'two', 'hosts': 'all', 'gather_facts': False,
             'tasks': [{'name': 'remaster', TASK: {'src': str(stock.path), 'dest_dir': str(media)}}]}]
    run = run_playbook(play, tmp_path / 'ansible', inventory='host-a,host-b,', extra_args=['-f', '2']).assert_ok()
    tasks = [task for task in run.tasks if task.task == 'remaster']
    assert sorted((task.result['cached'], task.changed) for task in tasks) == [(False, True), (True, False)]
    assert len({task.result['path'] for task in tasks}) == 1 and len(list(media.iterdir())) == 1
