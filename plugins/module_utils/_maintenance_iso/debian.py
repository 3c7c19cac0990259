# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Debian root file systems made with mmdebstrap and imported into podman as base images.

Two of them: the base of the maintenance image for ``base=debian`` (what a bootc base image brings: kernel,
systemd, udev, D-Bus, networking, dracut; ``maintenance_os/live/debian-packages.txt``), and the base of the
tool images for both bases (minbase + python3).  Every .deb is kept in the cache (mmdebstrap's sync-in/sync-out
hooks, "local apt cache" in its manual) and checked by apt on reuse.
"""

from __future__ import annotations

import os
import typing as t

# dpkg: no documentation, manual pages or translations in any root file system made here
DPKG_EXCLUDES = ('path-exclude=/usr/share/man/*', 'path-exclude=/usr/share/doc/*', 'path-include=/usr/share/doc/*/copyright',
                 'path-exclude=/usr/share/locale/*', 'path-exclude=/usr/share/info/*', 'path-exclude=/usr/share/lintian/*')
# Kernel modules a server maintenance OS never needs (graphics, sound, media, wireless, ...): a smaller ISO, less RAM.
PRUNED_MODULES = ('drivers/gpu', 'drivers/media', 'sound', 'drivers/net/wireless', 'net/wireless', 'net/mac80211', 'drivers/bluetooth',
                  'net/bluetooth', 'drivers/staging', 'drivers/iio', 'drivers/input/touchscreen', 'drivers/input/joystick', 'drivers/isdn',
                  'drivers/comedi', 'drivers/net/can', 'net/can', 'drivers/video', 'drivers/nfc', 'drivers/platform/chrome')
LIVE_BASE_DIR = 'maintenance_os/live/debian/rootfs'
TOOLS_BASE_PACKAGES = ('python3',)
HOSTNAME = 'l3metal-maintenance'


def cache_hooks(deb_cache: str) -> list[str]:
    """mmdebstrap options that reuse and refill ``deb_cache`` (the .debs never end up in the root file system)."""
    return ['--skip=download/empty', '--skip=essential/unlink',
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            '--setup-hook=sync-in %s /var/cache/apt/archives/' % deb_cache,
            '--customize-hook=sync-out /var/cache/apt/archives %s' % deb_cache,
            '--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb']


def common_options(packages: t.Sequence[str], variant: str) -> list[str]:
    argv = ['mmdebstrap', '--mode=root', '--variant=%s' % variant, '--aptopt=APT::Install-Recommends "false"']
    if packages:
        argv.append('--include=%s' % ','.join(packages))
    return argv + ['--dpkgopt=%s' % option for option in DPKG_EXCLUDES]


CLEANUP_HOOK = '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*'


def live_base_argv(packages: t.Sequence[str], suite: str, mirror: str, output: str, deb_cache: str, src_root: str) -> list[str]:
    """mmdebstrap for the Debian base of the maintenance image (a tar at ``output``)."""
    files = os.path.join(src_root, LIVE_BASE_DIR)
    prune = ' '.join(PRUNED_MODULES)
    return common_options(packages, 'apt') + cache_hooks(deb_cache) + [
        # before any package: dracut runs when the kernel is installed, and host-only mode cannot work in a chroot
        '--essential-hook=mkdir -p "$1"/etc/dracut.conf.d',
        '--essential-hook=copy-in %s/etc/dracut.conf.d/00-l3metal-debian-base.conf /etc/dracut.conf.d/' % files,
        '--customize-hook=sync-in %s /' % files,
        '--customize-hook=set -e; cd "$1"/usr/lib/modules/*/kernel; for d in %s; do rm -rf "$d"; done; '
        'chroot "$1" depmod "$(basename "$(dirname "$PWD")")"' % prune,
        '--customize-hook=set -e; echo %s > "$1"/etc/hostname; '
        'chroot "$1" systemctl enable systemd-networkd.service systemd-networkd-wait-online.service systemd-resolved.service; '
        'ln -sf ../run/systemd/resolve/stub-resolv.conf "$1"/etc/resolv.conf' % HOSTNAME,
        CLEANUP_HOOK,
        suite, output, mirror]


def tools_base_argv(suite: str, mirror: str, output: str, deb_cache: str) -> list[str]:
    """mmdebstrap for the base of the tool images: minbase plus python3 (each tool's INSTALL adds the rest)."""
    return common_options(TOOLS_BASE_PACKAGES, 'minbase') + cache_hooks(deb_cache) + [CLEANUP_HOOK, suite, output, mirror]


def apt_install_command(packages: t.Sequence[str]) -> str:
    """The INSTALL build argument for Debian: the lists and archives are volumes of the build (never in a layer)."""
    if not packages:
        return 'true'
    apt = 'apt-get -qq -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0'
    return ('%s update && DEBIAN_FRONTEND=noninteractive %s install -y --no-install-recommends %s && rm -f /var/cache/apt/*.bin'
            % (apt, apt, ' '.join(packages)))


def apt_volumes(apt_dir: str) -> list[str]:
    """podman build volumes for apt's lists and archives, so builds share downloads and no layer holds them."""
    for sub in ('lists/partial', 'archives/partial'):
        os.makedirs(os.path.join(apt_dir, sub), exist_ok=True)
    return ['%s:/var/lib/apt/lists' % os.path.join(apt_dir, 'lists'), '%s:/var/cache/apt/archives' % os.path.join(apt_dir, 'archives')]
