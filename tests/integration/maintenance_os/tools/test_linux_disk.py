# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Linux steps on a sparse disk image: partition, filesystems, fstab by UUID, config drive.

Inputs come from a real ``provisioner run --dry-run`` on a task medium built by task_iso's code.
Results are read back with sgdisk, blkid, fsck, mtools and an ext4 mount, not trusted from exit codes.
The rootfs pull (image-linux) and GRUB (bootloader-linux) are not run here: see docs/maintenance_os.md.
"""

from __future__ import annotations

import json
import tarfile

import pytest

from harness.fixtures_maintenance_os import debian_rootfs
from harness.loopdev import fat_files, mounted, sh
from harness.provisioner import JOB_ID, USER_DATA, build_medium, linux_recipe, run_provisioner
from harness.tools import import_tools, run_tool, tools_with_oci_stand_in

# The design's example layout (ESP, root, cidata), with the 100% partition moved last as the recipe rules require.
LAYOUT = [
    {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
    {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
    {'size': '100%', 'type_guid': '8300', 'format': 'ext4'},
]


def prepare(tmp_path, disk, layout=None):
    recipe = linux_recipe('http://127.0.0.1:9', target_disk=disk.dev, partition_layout=layout or LAYOUT)
    tmp_path.mkdir(parents=True, exist_ok=True)
    medium = build_medium(tmp_path / 'task.img', recipe, 'fat')
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_linux_layout_partitions_filesystems_and_config_drive(loop_disk, tmp_path):
    disk = loop_disk('1200M')
    # an old filesystem on the disk must not survive as a stray signature
    sh('mkfs.ext4', '-q', '-F', '-L', 'OLDROOT', disk.dev)
    run_dir = prepare(tmp_path, disk)
    proc = run_tool('partition', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rows = disk.gpt()
    assert [(r['number'], r['code'], r['name']) for r in rows] == [('1', 'EF00', ''), ('2', '8300', 'cidata'), ('3', '8300', '')]
    sectors = [int(r['end']) - int(r['start']) + 1 for r in rows]
    assert sectors[0] * 512 == 512 << 20 and sectors[1] * 512 == 16 << 20
    assert int(rows[2]['end']) > (1100 << 20) // 512  # 100% took the rest of the disk
    assert all(int(r['start']) % 2048 == 0 for r in rows)
    assert 'No problems found' in sh('sgdisk', '--verify', disk.dev)
    esp, cidata, root = disk.blkid(1), disk.blkid(2), disk.blkid(3)
    assert esp['TYPE'] == 'vfat' and esp.get('VERSION', 'FAT32') == 'FAT32'
    assert cidata['TYPE'] == 'vfat' and cidata['LABEL'] == 'cidata'
    assert root['TYPE'] == 'ext4'
    assert 'OLDROOT' not in sh('blkid', '-c', '/dev/null', '-o', 'export', disk.dev, check=False)
    sh('fsck.vfat', '-n', disk.part(1))
    sh('fsck.vfat', '-n', disk.part(2))
    sh('e2fsck', '-f', '-n', disk.part(3))

    # image-linux without the pull: a rootfs unpacked by the test, then the step's fstab writer
    import_tools()
    from l3mtools import image_linux, layout  # pylint: disable=import-outside-toplevel
    rootfs = tmp_path / 'rootfs.tar'
    (tmp_path / 'tree' / 'etc').mkdir(parents=True)
    (tmp_path / 'tree' / 'etc' / 'hostname').write_text('old\n')
    with tarfile.open(rootfs, 'w') as tar:
        tar.add(tmp_path / 'tree', arcname='.')
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    sh('mount', disk.part(3), str(mnt))
    try:
        with tarfile.open(rootfs) as tar:
            tar.extractall(mnt, filter='tar')
        image_linux.write_fstab(str(mnt), disk.dev, layout.parse(LAYOUT))
    finally:
        sh('umount', str(mnt))
    with mounted(disk.part(3)) as root_fs:
        fstab = (root_fs / 'etc' / 'fstab').read_text().splitlines()
        assert (root_fs / 'etc' / 'hostname').read_text() == 'old\n'
    assert fstab[1:] == ['UUID=%s / ext4 defaults 0 1' % root['UUID'], 'UUID=%s /boot/efi vfat umask=0077,shortname=winnt 0 2' % esp['UUID']]

    proc = run_tool('config_drive', run_dir, {'TARGET_DISK': disk.dev, 'JOB_ID': JOB_ID})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fat_files(disk.part(2)) == {'user-data': USER_DATA, 'meta-data': b'instance-id: "%s"\n' % JOB_ID.encode()}
    sh('fsck.vfat', '-n', disk.part(2))


def test_partition_runs_again_over_an_installed_disk(loop_disk, tmp_path):
    # reprovisioning: the old table and filesystems are replaced, the new layout is exact
    disk = loop_disk('600M')
    first = [{'size': '100M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'old'}]
    second = [{'size': '200M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'EFI'}, {'size': '1M', 'type_guid': 'ef02'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root'}]
    for layout in (first, second):
        run_dir = prepare(tmp_path / layout[0]['size'], disk, layout)
        proc = run_tool('partition', run_dir, {'TARGET_DISK': disk.dev})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(r['code'], r['name']) for r in disk.gpt()] == [('EF00', 'EFI'), ('EF02', ''), ('8300', 'root')]
    assert disk.blkid(2).get('TYPE') is None  # the BIOS boot partition has no filesystem
    assert disk.blkid(3)['LABEL'] == 'root'
    assert disk.blkid(1)['LABEL'] == 'EFI'


def test_config_drive_without_a_cidata_partition_fails_clearly(loop_disk, tmp_path):
    disk = loop_disk('300M')
    layout = [{'size': '100M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}]
    run_dir = prepare(tmp_path, disk, layout)
    proc = run_tool('config_drive', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 1
    assert 'no partition labelled cidata' in proc.stderr


def test_partition_refuses_a_missing_disk(tmp_path):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'layout.json').write_text('[{"size": "100%", "type_guid": "8300"}]')
    proc = run_tool('partition', run_dir, {'TARGET_DISK': '/dev/disk/by-id/does-not-exist'})
    assert proc.returncode == 1
    assert 'target disk /dev/disk/by-id/does-not-exist does not exist' in proc.stderr


def test_bootloader_linux_runs_grub_inside_the_new_system(loop_disk, tmp_path):
    grub_rootfs = debian_rootfs()
    disk = loop_disk('1G')
    layout = [{'size': '1M', 'type_guid': 'ef02'}, {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': '/'}]
    run_dir = prepare(tmp_path, disk, layout)
    assert run_tool('partition', run_dir, {'TARGET_DISK': disk.dev}).returncode == 0
    assert not any(disk.part(1).encode() in line for line in open('/proc/mounts', 'rb'))
    mnt = tmp_path / 'unpack'
    mnt.mkdir()
    sh('mount', disk.part(2), str(mnt))
    try:  # stands in for image-linux's pull: the root filesystem an OCI artifact would carry
        sh('tar', '-C', str(mnt), '-xf', str(grub_rootfs))
    finally:
        sh('umount', str(mnt))

    new_root = tmp_path / 'new-root'
    proc = run_tool('bootloader_linux', run_dir, {'TARGET_DISK': disk.dev, 'NEW_ROOT': str(new_root)})
    assert 'chroot %s /usr/sbin/grub-install --target=i386-pc %s' % (new_root, disk.dev) in proc.stdout
    assert str(new_root) not in open('/proc/mounts').read()  # every bind and target mount is gone again, also after a failure
    if proc.returncode != 0:
        # This kernel gives partitions of loop devices no HDIO_GETGEO and has no device-mapper, so GRUB cannot
        # work out where the partition holding /boot starts; it can on real disks (sd, nvme, virtio).
        assert 'cannot find a GRUB drive for %s' % disk.part(2) in proc.stderr, proc.stdout + proc.stderr
        import_tools()
        from l3mtools import blockdev, bootloader_linux, common, layout as layouts  # pylint: disable=import-outside-toplevel
        parts = layouts.parse(layout)
        with blockdev.target_mounted(disk.dev, layouts.mounts(parts), str(new_root)) as root, bootloader_linux.chroot_binds(root):
            common.run(['chroot', root, '/usr/sbin/grub-mkconfig', '-o', '/boot/grub/grub.cfg'])
        with mounted(disk.part(2)) as root:
            assert '### BEGIN /etc/grub.d/00_header ###' in (root / 'boot' / 'grub' / 'grub.cfg').read_text()
        assert str(new_root) not in open('/proc/mounts').read()
        pytest.skip('GRUB cannot map loop-device partitions on this kernel: the chroot, bind mounts, cleanup and grub-mkconfig '
                    'ran for real, the BIOS boot code was not installed')

    with open(disk.dev, 'rb') as raw:
        mbr = raw.read(512)
        raw.seek(int(disk.gpt()[0]['start']) * 512)
        core = raw.read(64 * 1024)
    assert b'GRUB' in mbr[:440] and mbr[510:] == b'\x55\xaa'   # boot.img in the protective MBR
    assert core.strip(b'\0')  # core.img embedded in the (new, all-zero) BIOS boot partition
    with mounted(disk.part(2)) as root:
        assert (root / 'boot' / 'grub' / 'i386-pc' / 'core.img').is_file()
        assert '### BEGIN /etc/grub.d/00_header ###' in (root / 'boot' / 'grub' / 'grub.cfg').read_text()
    sh('e2fsck', '-f', '-n', disk.part(2))


def test_image_linux_unpacks_into_the_mounted_system_and_writes_fstab(loop_disk, tmp_path):
    disk = loop_disk('400M')
    layout = [{'size': '100M', 'type_guid': '8300', 'format': 'ext4', 'label': 'boot', 'mountpoint': '/boot'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root', 'mountpoint': '/'}]
    run_dir = prepare(tmp_path, disk, layout)
    assert run_tool('partition', run_dir, {'TARGET_DISK': disk.dev}).returncode == 0
    new_root = tmp_path / 'new-root'
    env = {'TARGET_DISK': disk.dev, 'OCI_URL': 'registry.example.com:5000/os-images/ubuntu-rootfs:22.04', 'NEW_ROOT': str(new_root)}

    # until the shared OCI code is installed next to the tools, the step says so and leaves nothing mounted
    proc = run_tool('image_linux', run_dir, env)
    assert proc.returncode == 1
    assert 'the OCI pull code (l3mtools/_oci.py from plugins/module_utils/_oci.py) is not installed' in proc.stderr
    assert str(new_root) not in open('/proc/mounts').read()

    tree = tmp_path / 'tree'
    (tree / 'boot').mkdir(parents=True)
    (tree / 'boot' / 'vmlinuz').write_bytes(b'kernel')
    (tree / 'etc').mkdir()
    (tree / 'etc' / 'fstab').write_text('# from the image\n')
    rootfs = tmp_path / 'rootfs.tar'
    with tarfile.open(rootfs, 'w') as tar:
        tar.add(tree, arcname='.')
    calls = tmp_path / 'calls.jsonl'
    tools = tools_with_oci_stand_in(tmp_path / 'tools')
    proc = run_tool('image_linux', run_dir, dict(env, OCI_STAND_IN_LOG=str(calls), OCI_STAND_IN_SOURCE=str(rootfs)), tools_path=tools)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [json.loads(line) for line in calls.read_text().splitlines()] == [['pull_and_unpack', env['OCI_URL'], str(new_root)]]
    assert str(new_root) not in open('/proc/mounts').read()
    with mounted(disk.part(1)) as boot:
        assert (boot / 'vmlinuz').read_bytes() == b'kernel'  # /boot was mounted before the unpack
    with mounted(disk.part(2)) as root:
        fstab = (root / 'etc' / 'fstab').read_text().splitlines()
        assert not (root / 'boot' / 'vmlinuz').exists()
    assert fstab[1:] == ['UUID=%s / ext4 defaults 0 1' % disk.blkid(2)['UUID'], 'UUID=%s /boot ext4 defaults 0 2' % disk.blkid(1)['UUID']]
