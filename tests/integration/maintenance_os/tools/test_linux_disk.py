# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Linux steps on a sparse disk image: partition, the rootfs pulled from a real registry, fstab by UUID, config drive.

Inputs come from a real ``provisioner run --dry-run`` on a task medium built by task_iso's code; the
rootfs is a ``.tar.gz`` artifact pushed to a local distribution registry with the collection's push
code and pulled by image-linux through the collection's OCI code (streamed, digest-checked).  Results
are read back with sgdisk, blkid, fsck, mtools and a read-only ext4 mount, not trusted from exit
codes.  GRUB's BIOS boot code cannot be installed on a loop device here (test_bootloader_linux_runs_grub_inside_the_new_system
says why and what it asserts instead); the VM e2e runs prove it on a real virtual disk.
"""

from __future__ import annotations

import os
import stat
import tarfile

from l3metal_lab.archives import member, rootfs_members, snapshot, write_tar
from fixtures.maintenance_os import debian_rootfs
from l3metal_lab.loopdev import fat_files, mounted, sh
from l3metal_lab.provisioner import JOB_ID, USER_DATA, build_medium, linux_recipe, run_provisioner
from l3metal_lab.tools import push_file, run_tool, vfat_stand_in

# The design's example layout (ESP, root, cidata), with the 100% partition moved last as the recipe rules require.
LAYOUT = [
    {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
    {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
    {'size': '100%', 'type_guid': '8300', 'format': 'ext4'},
]
GRUB_EFI = b'MZ grubx64.efi from the image'


def prepare(tmp_path, disk, layout=None, oci_url=None):
    recipe = linux_recipe(target_disk=disk.dev, partition_layout=layout or LAYOUT)
    if oci_url:
        recipe['oci_url'] = oci_url
    tmp_path.mkdir(parents=True, exist_ok=True)
    medium = build_medium(tmp_path / 'task.img', recipe, 'fat')
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    return run_dir


def not_mounted(path) -> bool:
    return str(path) not in open('/proc/mounts', encoding='utf-8').read()


def test_linux_layout_end_to_end_from_a_real_registry(loop_disk, registry, tmp_path):
    rootfs = write_tar(tmp_path / 'rootfs.tar.gz', rootfs_members() + [
        member('boot/', type=tarfile.DIRTYPE, mode=0o755),
        member('boot/efi/', type=tarfile.DIRTYPE, mode=0o700),
        member('boot/efi/EFI/', type=tarfile.DIRTYPE, mode=0o700),
        member('boot/efi/EFI/debian/', type=tarfile.DIRTYPE, mode=0o700),
        member('boot/efi/EFI/debian/grubx64.efi', GRUB_EFI, mode=0o700),
    ])
    reference, layer = push_file(registry, 'os-images/debian-rootfs', rootfs)
    disk = loop_disk('1200M')
    # an old filesystem on the disk must not survive as a stray signature
    sh('mkfs.ext4', '-q', '-F', '-L', 'OLDROOT', disk.dev)
    run_dir = prepare(tmp_path, disk, oci_url=reference)
    assert 'OCI_URL="%s"' % reference in (run_dir / 'recipe.env').read_text()
    proc = run_tool('partition', run_dir, {'TARGET_DISK': disk.dev})
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rows = disk.gpt()
    assert [(r['number'], r['code'], r['name']) for r in rows] == [('1', 'EF00', ''), ('2', '8300', 'cidata'), ('3', '8300', '')]
    sectors = [int(r['end']) - int(r['start']) + 1 for r in rows]
    assert sectors[0] * 512 == 512 << 20 and sectors[1] * 512 == 16 << 20
    assert int(rows[2]['end']) > (1100 << 20) // 512  # 100% took the rest of the disk
    assert all(int(r['start']) % 2048 == 0 for r in rows)
    esp, cidata, root = disk.blkid(1), disk.blkid(2), disk.blkid(3)
    assert esp['TYPE'] == 'vfat' and esp.get('VERSION', 'FAT32') == 'FAT32'
    assert cidata['TYPE'] == 'vfat' and cidata['LABEL'] == 'cidata'
    assert root['TYPE'] == 'ext4'
    assert 'OLDROOT' not in sh('blkid', '-c', '/dev/null', '-o', 'export', disk.dev, check=False)

    new_root = tmp_path / 'new-root'
    env = {'TARGET_DISK': disk.dev, 'OCI_URL': reference, 'NEW_ROOT': str(new_root), 'OCI_INSECURE': 'true'}
    shims = vfat_stand_in(tmp_path / 'vfat')  # this kernel cannot mount the ESP; see l3metal_lab.tools

    # a blob changed in the registry's storage: refused by its digest, and nothing of it reaches the disk
    blob = registry.blob_path(layer)
    original = blob.read_bytes()
    blob.write_bytes(original[:len(original) // 2] + bytes(b ^ 0xFF for b in original[len(original) // 2:len(original) // 2 + 64])
                     + original[len(original) // 2 + 64:])
    proc = run_tool('image_linux', run_dir, env, path_first=shims)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'pull_and_unpack of %s failed' % reference in proc.stderr
    assert 'content hashes to' in proc.stderr and 'expected %s; the blob in the registry is corrupt or was tampered with' % layer in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not_mounted(new_root)
    with mounted(disk.part(3)) as root_fs:
        assert sorted(os.listdir(root_fs)) == ['lost+found']  # no half-written root, no staging directory left
    assert fat_files(disk.part(1)) == {}

    blob.write_bytes(original)
    proc = run_tool('image_linux', run_dir, env, path_first=shims)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not_mounted(new_root)

    # from the outside: the tree with modes, owners, links, xattrs; fstab by the UUIDs blkid reports
    with mounted(disk.part(3)) as root_fs:
        tree = snapshot(root_fs)
        assert tree['usr/bin/passwd'].mode == 0o4755 and tree['usr/bin/passwd'].uid == 0
        assert tree['etc/shadow'][1:4] == (0o640, 0, 42)
        assert tree['usr/bin/vi'].link == '/etc/alternatives/vi' and tree['usr/bin/view'].link == 'vi'
        assert tree['home/user'][1:4] == (0o700, 1000, 1000) and tree['srv/ro'].mode == 0o555
        python3, python311 = os.stat(root_fs / 'usr/bin/python3'), os.stat(root_fs / 'usr/bin/python3.11')
        assert python3.st_ino == python311.st_ino and python3.st_nlink == 2  # the hard link stays one inode
        assert os.getxattr(root_fs / 'usr/bin/ping', 'security.capability')[:4] == b'\x01\x00\x00\x02'
        assert (root_fs / 'etc' / 'hostname').read_bytes() == b'node01\n'
        assert stat.S_ISDIR(os.lstat(root_fs / 'boot' / 'efi').st_mode)
        assert os.listdir(root_fs / 'boot' / 'efi') == []  # the ESP's files went onto the ESP, not under its mount point
        assert not any(name.startswith('.oci') for name in os.listdir(root_fs))
        fstab = (root_fs / 'etc' / 'fstab').read_text().splitlines()
    assert fstab[1:] == ['UUID=%s / ext4 defaults 0 1' % root['UUID'], 'UUID=%s /boot/efi vfat umask=0077,shortname=winnt 0 2' % esp['UUID']]
    assert fat_files(disk.part(1)) == {'EFI/debian/grubx64.efi': GRUB_EFI}

    proc = run_tool('config_drive', run_dir, {'TARGET_DISK': disk.dev, 'JOB_ID': JOB_ID})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fat_files(disk.part(2)) == {'user-data': USER_DATA, 'meta-data': b'instance-id: "%s"\n' % JOB_ID.encode()}

    assert 'No problems found' in sh('sgdisk', '--verify', disk.dev)
    sh('fsck.vfat', '-n', disk.part(1))
    sh('fsck.vfat', '-n', disk.part(2))
    sh('e2fsck', '-f', '-n', disk.part(3))


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
    """bootloader-linux runs the new system's grub-install (i386-pc, for the BIOS boot partition) and grub-mkconfig in a
    chroot with /dev, /proc, /sys and /run bound in, and leaves nothing mounted.

    On this kernel grub-install cannot finish on a loop device: loop partitions have no HDIO_GETGEO and there is no
    device-mapper, so GRUB cannot work out where the partition holding /boot starts ("cannot find a GRUB drive").  The
    test then asserts that exact failure and everything before and after it (the chroot, the bind mounts, the cleanup,
    grub-mkconfig's output); on a kernel that can, it asserts the boot code itself.  The boot code on a real disk is
    proven by the VM e2e runs: the maintenance ISO boots in QEMU, the Quadlet step installs GRUB on the virtual disk, and
    l3metal_lab.diskcheck finds boot.img in the MBR and core.img in the BIOS boot partition (then the disk boots).
    """
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
        # The loop-device limit above, and nothing else: any other failure fails the test.
        assert 'cannot find a GRUB drive for %s' % disk.part(2) in proc.stderr, proc.stdout + proc.stderr
        assert 'bootloader-linux: error:' in proc.stderr, proc.stderr   # one clear line naming the step
        from l3mtools import blockdev, bootloader_linux, common, layout as layouts  # pylint: disable=import-outside-toplevel
        parts = layouts.parse(layout)
        with blockdev.target_mounted(disk.dev, layouts.mounts(parts), str(new_root)) as root, bootloader_linux.chroot_binds(root):
            for bound in ('dev', 'proc', 'sys', 'run'):
                assert os.path.ismount(os.path.join(root, bound)), bound
            common.run(['chroot', root, '/usr/sbin/grub-mkconfig', '-o', '/boot/grub/grub.cfg'])
        with mounted(disk.part(2)) as root:
            assert '### BEGIN /etc/grub.d/00_header ###' in (root / 'boot' / 'grub' / 'grub.cfg').read_text()
            assert (root / 'usr' / 'lib' / 'grub' / 'i386-pc' / 'boot.img').is_file()   # what grub-install would embed
        assert str(new_root) not in open('/proc/mounts').read()
        with open(disk.dev, 'rb') as raw:
            assert b'GRUB' not in raw.read(440)   # nothing half-written to the MBR
        return

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


def test_image_linux_fills_a_separate_boot_filesystem_and_writes_fstab(loop_disk, registry, tmp_path):
    disk = loop_disk('400M')
    layout = [{'size': '100M', 'type_guid': '8300', 'format': 'ext4', 'label': 'boot', 'mountpoint': '/boot'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root', 'mountpoint': '/'}]
    rootfs = write_tar(tmp_path / 'rootfs.tar.zst', [member('boot/', type=tarfile.DIRTYPE, mode=0o755), member('boot/vmlinuz', b'kernel'),
                                                     member('etc/', type=tarfile.DIRTYPE, mode=0o755), member('etc/fstab', b'# from the image\n')],
                       compression='zstd')
    reference, _layer = push_file(registry, 'os-images/with-boot', rootfs)
    run_dir = prepare(tmp_path, disk, layout, oci_url=reference)
    assert run_tool('partition', run_dir, {'TARGET_DISK': disk.dev}).returncode == 0
    new_root = tmp_path / 'new-root'
    env = {'TARGET_DISK': disk.dev, 'OCI_URL': reference, 'NEW_ROOT': str(new_root), 'OCI_INSECURE': 'true'}

    # registry errors are one line naming the artifact, and leave nothing mounted
    missing = reference.replace(':1.0', ':no-such-tag')
    proc = run_tool('image_linux', run_dir, dict(env, OCI_URL=missing))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'pull_and_unpack of %s failed' % missing in proc.stderr and 'not found' in proc.stderr.lower()
    assert not_mounted(new_root)
    # the registry speaks plain HTTP: without the site's OCI_INSECURE the step says how to fix it
    proc = run_tool('image_linux', run_dir, dict(env, OCI_INSECURE='false'))
    assert proc.returncode == 1 and 'TLS error talking to https://%s' % registry.host in proc.stderr
    assert 'registry settings of this step: OCI_CA_FILE, OCI_AUTH_FILE, OCI_INSECURE in /etc/l3metal/site.env' in proc.stderr

    proc = run_tool('image_linux', run_dir, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not_mounted(new_root)
    with mounted(disk.part(1)) as boot:
        assert (boot / 'vmlinuz').read_bytes() == b'kernel'  # /boot was mounted before the unpack
    with mounted(disk.part(2)) as root:
        fstab = (root / 'etc' / 'fstab').read_text().splitlines()
        assert not (root / 'boot' / 'vmlinuz').exists()
    assert fstab[1:] == ['UUID=%s / ext4 defaults 0 1' % disk.blkid(2)['UUID'], 'UUID=%s /boot ext4 defaults 0 2' % disk.blkid(1)['UUID']]
    sh('e2fsck', '-f', '-n', disk.part(1))
