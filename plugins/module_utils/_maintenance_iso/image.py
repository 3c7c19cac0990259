# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance image as the ISO carries it: three podman builds from the sources, the same for both bases.

1. ``maintenance_os/Containerfile`` (the dispatcher and ``common/l3metal_contract`` in /usr/lib/l3metal/python,
   /usr/sbin/provisioner, the units, the Quadlet files, the enabled dispatcher) FROM the base: the Debian base
   made here with INSTALL = its Debian packages, or the bootc base image with its own (Fedora) INSTALL;
2. ``maintenance_os/site/Containerfile`` with the site directory as its context, when there are site settings;
3. ``maintenance_os/live/Containerfile``: the read-only tool-image store's mounts, the live initramfs settings.

So the ISO holds exactly what the Containerfiles install: no second description of the image to keep in step.
"""

from __future__ import annotations

import os
import typing as t

from .debian import apt_install_command, apt_volumes
from .podman import Podman
from .settings import BuildSpec
from .sources import Sources

SITE_CONTAINERFILE = 'maintenance_os/site/Containerfile'
LIVE_CONTAINERFILE = 'maintenance_os/live/Containerfile'


def write_site_dir(files: t.Mapping[str, bytes], directory: str) -> str:
    """A site directory (maintenance_os/site/example format) from the ``site`` option: 0700, files 0600 (the node key)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    for rel, content in sorted(files.items()):
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content)
        os.replace(path + '.tmp', path)
    return directory


def maintenance_build_args(spec: BuildSpec, sources: Sources, base_image: str) -> dict[str, str]:
    args = {'BASE': base_image, 'TOOLS_REGISTRY': spec.tools_registry}
    if spec.base == 'debian':
        args['INSTALL'] = apt_install_command(sources.debian_install(spec.containerfile))
    return args


def build_maintenance_image(podman: Podman, spec: BuildSpec, sources: Sources, base_image: str, site_dir: str | None,
                            omit_files: t.Sequence[str], key: str, apt_dir: str) -> str:
    """The three builds; returns the tag of the live image."""
    no_cache = spec.force
    maintenance = podman.tag('maintenance', key)
    # Debian: the base is the image made here, never pulled; bootc: the base image is pulled when missing (pin a digest:
    # a tag that moves is not noticed by the stage key, which names the reference).
    volumes, pull = (apt_volumes(apt_dir), 'never') if spec.base == 'debian' else ([], 'missing')
    podman.build('image', sources.path(spec.containerfile), sources.root, maintenance, maintenance_build_args(spec, sources, base_image),
                 network='host', volumes=volumes, pull=pull, no_cache=no_cache)
    below = maintenance
    if site_dir:
        below = podman.build('image', sources.path(SITE_CONTAINERFILE), site_dir, podman.tag('site', key), {'BASE': maintenance},
                             no_cache=no_cache)
    return podman.build('image', sources.path(LIVE_CONTAINERFILE), sources.root, podman.tag('image', key),
                        {'BASE': below, 'OMIT_FILES': ' '.join(omit_files)}, no_cache=no_cache)
