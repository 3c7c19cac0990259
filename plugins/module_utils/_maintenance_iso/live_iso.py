# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The live ISO from the live image: squashfs root, initramfs from the image's own dracut, GRUB for BIOS and UEFI.

The same steps for both bases (only where the root file system comes from differs: an image mount for Debian,
``bootc container export`` for bootc):

- ``LiveOS/squashfs.img``: the image's root file system (``mksquashfs -comp zstd -xattrs``), with the tool-image
  store as ``/usr/lib/l3metal/tool-images.sqfs`` (a pseudo file: the store squashfs is its own file system,
  mounted read-only by the live system);
- ``boot/vmlinuz`` and ``boot/initrd.img``: the image's kernel and a dracut initramfs made by running dracut in the
  image (settings ``maintenance_os/live/rootfs/usr/lib/dracut/dracut.conf.d/``: generic, dmsquash-live);
- ``boot/grub/grub.cfg`` from ``maintenance_os/live/grub.cfg.in``; ``grub-mkrescue`` makes the hybrid image: El
  Torito for BIOS (GRUB i386-pc) and UEFI (an EFI system partition image with GRUB x86_64-efi), bootable from a
  CD and from a disk (GPT/MBR), volume id = the label dracut looks for.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import typing as t

from .errors import MaintenanceIsoError
from .podman import Podman
from .runner import Runner

GRUB_TEMPLATE = 'maintenance_os/live/grub.cfg.in'
STORE_PATH = 'usr/lib/l3metal/tool-images.sqfs'
SQUASHFS_FILE = 'squashfs.img'
# Runs in the live image: its one kernel, then dracut with the image's settings.  Debian keeps the kernel in /boot,
# Fedora/CentOS bootc images in /usr/lib/modules/<version>/vmlinuz.
INITRAMFS_SCRIPT = r'''set -eu
set -- /usr/lib/modules/*/
if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then echo "expected exactly one kernel in /usr/lib/modules, found: $*" >&2; exit 3; fi
kver=$(basename "$1")
if [ -f "/usr/lib/modules/$kver/vmlinuz" ]; then cp "/usr/lib/modules/$kver/vmlinuz" /out/vmlinuz; else cp "/boot/vmlinuz-$kver" /out/vmlinuz; fi
dracut --force --kver "$kver" /out/initrd.img
chmod 0644 /out/vmlinuz /out/initrd.img
echo "$kver" > /out/kver
'''


# What a build leaves in /run and /tmp (podman build's resolv.conf target, for one) is hidden by tmpfs at boot anyway.
EMPTIED = ('run/*', 'tmp/*', 'var/tmp/*')


def squashfs_argv(source: str, output: str, level: int, excluded: t.Sequence[str], tool_store: str) -> list[str]:
    """mksquashfs of the live root; ``excluded`` top-level directories are left out, ``EMPTIED`` ones kept empty.
    ``-e`` comes last: it takes the rest of the command line."""
    pseudo = '%s f 0444 0 0 cat %s' % (STORE_PATH, shlex.quote(tool_store))
    return ['mksquashfs', source, output, '-comp', 'zstd', '-Xcompression-level', str(level), '-xattrs', '-noappend',
            '-quiet', '-no-progress', '-p', pseudo, '-wildcards', '-e'] + list(excluded) + list(EMPTIED)


def initramfs_command() -> list[str]:
    return ['sh', '-c', INITRAMFS_SCRIPT]


def make_initramfs(podman: Podman, image: str, out_dir: str) -> str:
    """vmlinuz, initrd.img and kver into ``out_dir``; returns the kernel version."""
    podman.run('initramfs', image, initramfs_command(), volumes=['%s:/out' % out_dir])
    with open(os.path.join(out_dir, 'kver'), encoding='utf-8') as handle:
        return handle.read().strip()


def grub_cfg(template: str, title: str, cmdline: str) -> str:
    for marker in ('@TITLE@', '@CMDLINE@'):
        if marker not in template:
            raise MaintenanceIsoError('%s lacks %s' % (GRUB_TEMPLATE, marker), 'src')
    return template.replace('@TITLE@', title).replace('@CMDLINE@', cmdline)


def grub_mkrescue_argv(output: str, tree: str, label: str) -> list[str]:
    """Hybrid BIOS + UEFI image; GRUB's fonts, themes and translations are left out (console and serial only).
    ``iso_9660_level=3``: files over 4 GiB (a big image store) are allowed (grub-mkrescue passes what follows ``--`` to xorriso's
    native commands, not to its mkisofs emulation)."""
    return ['grub-mkrescue', '--fonts=', '--locales=', '--themes=', '-o', output, tree, '--', '-volid', label, '-compliance', 'iso_9660_level=3']


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def iso_tree(work: str, squashfs: str, kernel: str, initrd: str, cfg: str) -> str:
    tree = os.path.join(work, 'iso')
    for sub in ('LiveOS', 'boot/grub'):
        os.makedirs(os.path.join(tree, sub))
    link_or_copy(squashfs, os.path.join(tree, 'LiveOS', SQUASHFS_FILE))
    link_or_copy(kernel, os.path.join(tree, 'boot', 'vmlinuz'))
    link_or_copy(initrd, os.path.join(tree, 'boot', 'initrd.img'))
    with open(os.path.join(tree, 'boot', 'grub', 'grub.cfg'), 'w', encoding='utf-8') as handle:
        handle.write(cfg)
    return tree


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: str, text: str, mode: int = 0o644) -> None:
    tmp = '%s.tmp-%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(tmp, path)


def sha256_line(sha256: str, iso: str) -> str:
    """The .sha256 file, as ``sha256sum -c`` reads it."""
    return '%s  %s\n' % (sha256, os.path.basename(iso))


def read_sha256_file(path: str) -> str | None:
    try:
        with open(path, encoding='utf-8') as handle:
            words = handle.read().split()
    except OSError:
        return None
    return words[0] if words and len(words[0]) == 64 else None


def write_iso(runner: Runner, tree: str, iso: str, label: str, mode: int) -> str:
    """grub-mkrescue into a temporary file beside ``iso``, then rename; the .sha256 file after it.  Returns the sha256."""
    tmp = os.path.join(os.path.dirname(iso), '.%s.tmp-%d' % (os.path.basename(iso), os.getpid()))
    try:
        runner.run('iso', grub_mkrescue_argv(tmp, tree, label))
        os.chmod(tmp, mode)
        sha256 = sha256_of(tmp)
        os.replace(tmp, iso)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    write_text_atomic(iso + '.sha256', sha256_line(sha256, iso), 0o644)  # a checksum is no secret, whatever the ISO holds
    return sha256


def prune_isos(dest: str, name: str, keep: int, current: str) -> list[str]:
    """Remove all but the ``keep`` newest ``<name>-<digest>.iso`` in ``dest`` (with their .sha256); never ``current``."""
    if not keep:
        return []
    prefix = name + '-'
    found = [os.path.join(dest, entry) for entry in os.listdir(dest)
             if entry.startswith(prefix) and entry.endswith('.iso') and len(entry) == len(prefix) + 16 + 4]
    found.sort(key=lambda path: (path == current, os.stat(path).st_mtime), reverse=True)
    removed = []
    for path in found[keep:]:
        for victim in (path, path + '.sha256'):
            if os.path.exists(victim):
                os.unlink(victim)
        removed.append(path)
    return removed
