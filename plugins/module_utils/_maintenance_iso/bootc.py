# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bootc base: the live root file system of a bootc image, exported with its SELinux labels.

The generic path (docs/maintenance_os.md, "Why not image-builder"): the maintenance image is built FROM the bootc
image like any base (image.py), its root file system comes out of ``bootc container export --format=tar``, run from
the image itself (it labels every file as a booted host would; ``podman export`` carries no labels), ``sysroot``
and ``ostree`` stay out of the squashfs, and the initramfs and the ISO are made by the same steps as for Debian.

UNPROVEN here (no bootc base image can be pulled on this machine): every command of this file runs only against a
real bootc image; the tests check the commands this module assembles and the errors it gives.
"""

from __future__ import annotations

import os
import typing as t

from .errors import CommandError, MaintenanceIsoError
from .podman import Podman
from .runner import Runner

EXPORT_FILE = 'rootfs.tar'
# not part of a live root: the ostree deployment layout of an installed bootc system
EXCLUDED = ('sysroot', 'ostree', 'boot')
MIN_BOOTC = '1.14'


def export_check_argv(podman: Podman, image: str) -> list[str]:
    """Does the image's bootc have ``container export`` (bootc >= 1.14)?"""
    return podman.argv + podman.run_argv(image, ['bootc', 'container', 'export', '--help'])


def export_argv(podman: Podman, image: str, out_dir: str) -> list[str]:
    """``bootc container export`` from inside the image, writing ``<out_dir>/rootfs.tar`` (the kernel stays in /usr/lib/modules)."""
    return podman.argv + podman.run_argv(image, ['bootc', 'container', 'export', '--format=tar', '-o', '/output/' + EXPORT_FILE, '/'],
                                         volumes=['%s:/output:Z' % out_dir], privileged=True)


def extract_argv(tar: str, root: str) -> list[str]:
    """Unpack the export keeping owners, modes and every xattr (security.selinux among them), without the ostree layout."""
    argv = ['tar', '--extract', '--file', tar, '--directory', root, '--numeric-owner', '--preserve-permissions',
            '--xattrs', '--xattrs-include=*', '--anchored']
    for name in EXCLUDED:
        argv += ['--exclude=./%s' % name, '--exclude=%s' % name]
    return argv


def export_rootfs(runner: Runner, podman: Podman, image: str, work: str) -> str:
    """The image's root file system as a directory below ``work``, labelled by bootc."""
    try:
        runner.run('squashfs', export_check_argv(podman, image), env=podman.env)
    except CommandError as exc:
        raise MaintenanceIsoError('the image\'s bootc cannot export its root file system ("bootc container export" needs bootc >= %s; '
                                  'Fedora 43 and CentOS Stream 10 bootc images have it): %s' % (MIN_BOOTC, exc.output_tail[-500:]),
                                  'bootc_image') from None
    runner.run('squashfs', export_argv(podman, image, work), env=podman.env)
    root = os.path.join(work, 'rootfs')
    os.makedirs(root)
    runner.run('squashfs', extract_argv(os.path.join(work, EXPORT_FILE), root))
    os.unlink(os.path.join(work, EXPORT_FILE))
    return root


def excluded_paths(base: str) -> t.Sequence[str]:
    return EXCLUDED if base == 'bootc' else ('boot',)
