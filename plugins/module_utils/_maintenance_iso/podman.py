# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""podman with a store of its own under the cache directory (the host's images are never touched).

``--root``/``--runroot`` are absolute paths: a relative ``--root`` fails on its second use with "database
configuration mismatch" (podman 4.3).  ``containers_conf`` (CONTAINERS_CONF) carries host quirks such as a
runtime or ulimits; the builds need nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import typing as t

from .runner import Runner

# Images the build tags in its store; the stage key is the tag.
REPOSITORY = 'localhost/l3metal-maintenance-iso'


def short_runroot(root: str, prefix: str = 'l3metal-iso') -> str:
    """A runroot for the store at ``root``: podman refuses one longer than 50 characters ("the specified runroot is longer
    than 50 characters"), so it lives in /run (state of this boot only: locks, mounts), named after the store."""
    return '/run/%s-%s' % (prefix, hashlib.sha256(root.encode()).hexdigest()[:12])


class Podman:
    def __init__(self, runner: Runner, store: str, containers_conf: str | None = None) -> None:
        self.runner = runner
        self.root = os.path.abspath(os.path.join(store, 'root'))
        self.runroot = short_runroot(self.root)
        self.env = {'CONTAINERS_CONF': containers_conf} if containers_conf else {}

    @property
    def argv(self) -> list[str]:
        return ['podman', '--root', self.root, '--runroot', self.runroot, '--storage-driver', 'overlay']

    def storage_reference(self, reference: str) -> str:
        """The image in this store as skopeo names it."""
        return 'containers-storage:[overlay@%s+%s]%s' % (self.root, self.runroot, reference)

    @staticmethod
    def tag(stage: str, key: str) -> str:
        return '%s/%s:%s' % (REPOSITORY, stage, key)

    def run_podman(self, stage: str, args: t.Sequence[str], capture: bool = False) -> str:
        return self.runner.run(stage, self.argv + list(args), env=self.env, capture=capture)

    def image_exists(self, reference: str) -> bool:
        try:
            self.runner.run('podman', self.argv + ['image', 'exists', reference], env=self.env)
        except Exception:  # pylint: disable=broad-exception-caught
            return False
        return True

    def build_argv(self, containerfile: str, context: str, tag: str, build_args: t.Mapping[str, str], network: str = 'none',
                   volumes: t.Sequence[str] = (), pull: str = 'never', no_cache: bool = False) -> list[str]:
        argv = ['build', '--layers', '--pull=%s' % pull, '--network', network, '-f', containerfile, '-t', tag]
        if no_cache:
            argv.append('--no-cache')
        for volume in volumes:
            argv += ['-v', volume]
        for name, value in build_args.items():
            argv += ['--build-arg', '%s=%s' % (name, value)]
        return argv + [context]

    def build(self, stage: str, containerfile: str, context: str, tag: str, build_args: t.Mapping[str, str], **options: t.Any) -> str:
        self.run_podman(stage, self.build_argv(containerfile, context, tag, build_args, **options))
        return tag

    def import_tar(self, stage: str, tar: str, tag: str) -> str:
        self.run_podman(stage, ['import', tar, tag])
        return tag

    def run_argv(self, image: str, command: t.Sequence[str], volumes: t.Sequence[str] = (), network: str = 'none',
                 privileged: bool = False) -> list[str]:
        argv = ['run', '--rm', '--network', network]
        if privileged:
            argv.append('--privileged')
        for volume in volumes:
            argv += ['-v', volume]
        return argv + [image] + list(command)

    def run(self, stage: str, image: str, command: t.Sequence[str], capture: bool = False, **options: t.Any) -> str:
        return self.run_podman(stage, self.run_argv(image, command, **options), capture=capture)

    @contextlib.contextmanager
    def mounted(self, stage: str, reference: str) -> t.Iterator[str]:
        """The image's file system, read-only (``podman image mount``)."""
        path = self.run_podman(stage, ['image', 'mount', reference], capture=True).strip()
        try:
            yield path
        finally:
            self.run_podman(stage, ['image', 'unmount', reference])

    def remove(self, stage: str, references: t.Sequence[str]) -> None:
        if references:
            self.run_podman(stage, ['rmi', '--force'] + list(references))

    def tags(self, stage: str) -> list[str]:
        """The tags (stage keys) of ``REPOSITORY/<stage>`` images, newest first."""
        out = self.run_podman('podman', ['images', '--format', '{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}', '--filter',
                                         'reference=%s/%s' % (REPOSITORY, stage)], capture=True)
        rows = sorted((line.split('\t', 1) for line in out.splitlines() if '\t' in line), reverse=True)
        return [reference.strip() for _created, reference in rows]

    def prune_dangling(self) -> None:
        self.run_podman('podman', ['image', 'prune', '--force'])
