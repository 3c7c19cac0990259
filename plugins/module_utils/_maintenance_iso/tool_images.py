# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tool images of the Quadlet steps, built offline-ready into a read-only image store for the ISO.

Each image is built with podman from its own ``maintenance_os/tools/<tool>/Containerfile`` (the build context
is the source root, as for a registry build), on a Debian base made here, with the Debian names of
``maintenance_os/debian-install.txt`` as INSTALL.  The images the Quadlet files name are then copied with
skopeo into a fresh containers-storage store, which becomes ``tool-images.sqfs``: the live system mounts it
read-only at /usr/lib/containers/storage (``maintenance_os/live/``), podman 5 reads it as an additional image
store, and ``Pull=never`` resolves every step's image there.
"""

from __future__ import annotations

import json
import os
import shutil
import typing as t

from .debian import apt_install_command, apt_volumes
from .podman import Podman, short_runroot
from .runner import Runner
from .sources import Sources, ToolPlan

STORE_FILE = 'tool-images.sqfs'
IMAGES_FILE = 'images.json'


def tool_build_args(sources: Sources, plan: ToolPlan, registry: str, toolbase: str,
                    extra: t.Mapping[str, t.Mapping[str, str]]) -> list[tuple[str, str, dict[str, str]]]:
    """(containerfile, tag, build arguments) of every tool image, in build order."""
    builds = []
    by_key = {'%s:%s' % (tool.name, tool.tag): tool for tool in plan.build}
    for tool in plan.build:
        args: dict[str, str] = {'BASE': by_key[tool.parent].reference(registry) if tool.parent else toolbase}
        if tool.has_install:
            args['INSTALL'] = apt_install_command(sources.debian_install(tool.containerfile))
        args.update(extra.get(tool.name, {}))
        builds.append((tool.containerfile, tool.reference(registry), args))
    return builds


def build_tool_images(runner: Runner, podman: Podman, sources: Sources, plan: ToolPlan, registry: str, toolbase: str,
                      extra: t.Mapping[str, t.Mapping[str, str]], apt_dir: str, no_cache: bool) -> list[str]:
    """podman build of every tool image; returns the references built."""
    built = []
    for containerfile, reference, args in tool_build_args(sources, plan, registry, toolbase, extra):
        podman.build('tools', sources.path(containerfile), sources.root, reference, args, network='host',
                     volumes=apt_volumes(apt_dir), no_cache=no_cache)
        built.append(reference)
    return built


def mksquashfs_store_argv(store: str, output: str, level: int) -> list[str]:
    return ['mksquashfs', store, output, '-comp', 'zstd', '-Xcompression-level', str(level), '-xattrs', '-noappend', '-quiet', '-no-progress']


def write_store(runner: Runner, podman: Podman, plan: ToolPlan, registry: str, work: str, output_dir: str, level: int) -> dict[str, t.Any]:
    """Copy the steps' images into a fresh store, squash it; returns what is in it (also written as images.json)."""
    store = os.path.join(work, 'store')
    runroot = short_runroot(store, 'l3metal-iso-store')
    for tool in plan.store:
        reference = tool.reference(registry)
        runner.run('tools', ['skopeo', 'copy', '--quiet', podman.storage_reference(reference),
                             'containers-storage:[overlay@%s+%s]%s' % (store, runroot, reference)], env=podman.env)
    listing = runner.run('tools', ['podman', '--root', store, '--runroot', runroot, '--storage-driver', 'overlay', 'images',
                                   '--format', 'json'], env=podman.env, capture=True)
    images = [{'names': entry.get('Names') or [], 'id': entry.get('Id'), 'size': entry.get('Size')} for entry in json.loads(listing or '[]')]
    shutil.rmtree(runroot, ignore_errors=True)
    runner.run('tools', mksquashfs_store_argv(store, os.path.join(output_dir, STORE_FILE), level))
    shutil.rmtree(store, ignore_errors=True)
    content = {'images': images, 'references': [tool.reference(registry) for tool in plan.store]}
    with open(os.path.join(output_dir, IMAGES_FILE), 'w', encoding='utf-8') as handle:
        json.dump(content, handle, indent=1, sort_keys=True)
    return content
