# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Windows steps on a sparse disk image: EFI/MSR/NTFS, a wimcapture'd WIM from a real registry applied,
boot files, unattend.xml.

The WIM is pushed to a local distribution registry with the collection's push code; image-windows
fetches it with the collection's OCI code (``pull_blob_to_file``: streamed, digest-checked) and
wimapplies it into the unmounted NTFS partition.  Read back with wimlib, ntfs-3g, mtools and fsck.
"""

from __future__ import annotations

import re

from l3metal_lab.loopdev import fat_files, ntfs_mounted, sh
from l3metal_lab.node_images import WIM_BCD, wim_bootmgfw, write_windows_wim
from l3metal_lab.provisioner import UNATTEND, build_medium, run_provisioner, windows_recipe
from l3metal_lab.tools import push_file, run_tool

LAYOUT = [
    {'size': '100M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'SYSTEM'},
    {'size': '16M', 'type_guid': '0c01'},
    {'size': '100%', 'type_guid': '0700', 'format': 'ntfs', 'label': 'Windows'},
]
BOOTMGFW = wim_bootmgfw(2)


def make_wim(tmp_path):
    """Two images (the lab's WIM): index 1 a decoy, index 2 the one the recipe asks for (wim_index: 2)."""
    wim = write_windows_wim(tmp_path / 'install.wim', tmp_path)
    assert re.search(r'^Image Count:\s+2$', sh('wimlib-imagex', 'info', str(wim)), re.M)
    assert wim_bootmgfw(1) != BOOTMGFW  # the decoy's boot manager differs: copying it would fail the read-back
    return wim


def test_windows_layout_wim_boot_files_and_unattend(loop_disk, registry, tmp_path):
    wim = make_wim(tmp_path)
    reference, _layer = push_file(registry, 'os-images/windows-wim', wim)
    disk = loop_disk('700M')
    recipe = dict(windows_recipe(), target_disk=disk.dev, partition_layout=LAYOUT, oci_url=reference)
    medium = build_medium(tmp_path / 'task.iso', recipe, payloads={'unattend_xml': UNATTEND})
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert 'OCI_URL="%s"' % reference in (run_dir / 'recipe.env').read_text() and 'WIM_INDEX="2"' in (run_dir / 'recipe.env').read_text()
    proc = run_tool('partition', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(r['code'], r['name']) for r in disk.gpt()] == [('EF00', 'SYSTEM'), ('0C01', ''), ('0700', 'Windows')]
    assert disk.blkid(1)['TYPE'] == 'vfat' and disk.blkid(3)['TYPE'] == 'ntfs' and disk.blkid(3)['LABEL'] == 'Windows'
    assert disk.blkid(2).get('TYPE') is None

    cache = tmp_path / 'cache'
    cache.mkdir()
    env = {'TARGET_DISK': disk.dev, 'OCI_URL': reference, 'WIM_CACHE_DIR': str(cache), 'OCI_INSECURE': 'true'}
    proc = run_tool('image_windows', run_dir, dict(env, WIM_INDEX='3'))
    assert proc.returncode == 1
    assert 'wim_index 3 is not in %s, which holds 2 images' % (cache / 'install.wim') in proc.stderr
    assert list(cache.iterdir()) == []  # the staged WIM does not stay in RAM, not even after a failure
    # an error inside the OCI code is one line naming the artifact, not a traceback
    missing = reference.replace(':1.0', ':no-such-tag')
    proc = run_tool('image_windows', run_dir, dict(env, OCI_URL=missing))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'pull_blob_to_file of %s failed' % missing in proc.stderr and 'not found' in proc.stderr.lower()
    proc = run_tool('image_windows', run_dir, dict(env, WIM_INDEX='2'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'fetched manifest sha256:' in proc.stdout
    assert list(cache.iterdir()) == []

    proc = run_tool('bootloader_windows', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'not booted in UEFI mode' in proc.stdout
    proc = run_tool('unattend', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    assert fat_files(disk.part(1)) == {
        'EFI/Boot/bootx64.efi': BOOTMGFW,
        'EFI/Microsoft/Boot/BCD': WIM_BCD,
        'EFI/Microsoft/Boot/bootmgfw.efi': BOOTMGFW,
        'EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui': b'mui',
    }
    sh('fsck.vfat', '-n', disk.part(1))
    in_wim = {line.strip() for line in sh('wimlib-imagex', 'dir', str(wim), '2').splitlines() if line.strip() not in ('', '/')}
    with ntfs_mounted(disk.part(3)) as windows:
        on_disk = {'/' + str(path.relative_to(windows)) for path in windows.rglob('*')}
        assert on_disk - in_wim == {'/Windows/Panther', '/Windows/Panther/unattend.xml'} and in_wim <= on_disk  # image 2 exactly, plus unattend
        assert (windows / 'Windows' / 'System32' / 'marker.txt').read_bytes() == b'image two'
        assert (windows / 'Program Files' / 'Grüße.txt').read_text() == 'unicode name'
        assert (windows / 'Windows' / 'Panther' / 'unattend.xml').read_bytes() == UNATTEND
    sh('ntfsfix', '--no-action', disk.part(3))


def test_boot_files_need_an_applied_image(loop_disk, tmp_path):
    disk = loop_disk('300M')
    recipe = dict(windows_recipe(), target_disk=disk.dev, partition_layout=LAYOUT)
    medium = build_medium(tmp_path / 'task.iso', recipe, payloads={'unattend_xml': UNATTEND})
    run_dir = tmp_path / 'run'
    assert run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run').returncode == 0
    assert run_tool('partition', run_dir, {'TARGET_DISK': disk.dev}).returncode == 0
    proc = run_tool('bootloader_windows', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 1
    assert 'has no Windows/Boot/EFI' in proc.stderr
    proc = run_tool('unattend', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 1
    assert 'has no Windows directory' in proc.stderr
