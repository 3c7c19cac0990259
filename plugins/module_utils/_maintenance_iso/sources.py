# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the maintenance OS sources say: Containerfiles and what they copy, the Debian package names of their INSTALL
arguments, the tool image of each Quadlet step, the steps each provisioning target needs.

Everything the ISO carries is described once, in ``maintenance_os/``: the builder reads it from there (the tool
images to build are the ``Image=`` lines of the Quadlet files; their build order is the ``ARG BASE=`` default of
each tool's Containerfile), so the module has no list of its own to keep in step.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import typing as t

from .digest import Digest
from .errors import MaintenanceIsoError

# The registry path the Quadlet files and the tool Containerfiles name; maintenance_os/Containerfile rewrites it to
# its TOOLS_REGISTRY build argument, as the builder does for the images it builds.
SOURCE_TOOLS_REGISTRY = 'registry.example.com/l3metal/tools'
DEBIAN_INSTALL = 'maintenance_os/debian-install.txt'
LIVE_PACKAGES = 'maintenance_os/live/debian-packages.txt'
_IMAGE = re.compile(r'^Image=(\S+)\s*$', re.MULTILINE)
_ARG_DEFAULT = re.compile(r'^ARG\s+(\w+)=(.*)$', re.MULTILINE)
_UNIT_LIST = re.compile(r'^(?:Requires|Wants)=(.*)$', re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class ToolImage:
    """One tool image to build from maintenance_os/tools/<name>/Containerfile."""

    name: str
    containerfile: str         # relative to the source root
    tag: str
    parent: str | None         # the tool image it is built FROM (None: the Debian tools base)
    missing: tuple[str, ...]   # files its COPY lines need that are not there (a vendor binary)
    has_install: bool

    def reference(self, registry: str) -> str:
        return '%s/%s:%s' % (registry, self.name, self.tag)


@dataclasses.dataclass(frozen=True)
class ToolPlan:
    build: tuple[ToolImage, ...]             # in build order (parents first)
    store: tuple[ToolImage, ...]             # the images the Quadlet steps run: the image store's content
    omitted_tools: dict[str, str]            # tool -> why it is left out
    omitted_steps: tuple[str, ...]           # Quadlet files left out (their image cannot be built)
    omitted_targets: tuple[str, ...]         # targets that need an omitted step

    @property
    def omit_files(self) -> tuple[str, ...]:
        """Paths in the image that the live layer removes (maintenance_os/live/Containerfile OMIT_FILES)."""
        paths = []
        for quadlet in self.omitted_steps:
            paths += ['usr/share/containers/systemd/' + quadlet, 'usr/lib/bootc/bound-images.d/' + quadlet]
        paths += ['usr/lib/systemd/system/' + target for target in self.omitted_targets]
        return tuple(paths)


class Sources:
    """A checkout or installed copy of the collection: ``maintenance_os/`` and ``common/``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._install: dict[str, list[str]] | None = None

    def path(self, rel: str) -> str:
        return rel if os.path.isabs(rel) else os.path.join(self.root, rel)

    def read(self, rel: str) -> str:
        try:
            with open(self.path(rel), encoding='utf-8') as handle:
                return handle.read()
        except OSError as exc:
            raise MaintenanceIsoError('cannot read %s: %s' % (self.path(rel), exc.strerror), 'src') from None

    # -- Containerfiles ------------------------------------------------------------------------------------------
    def copy_sources(self, containerfile: str) -> list[str]:
        """The build-context paths a Containerfile's COPY/ADD lines read (relative to the source root)."""
        sources = []
        for line in _instructions(self.read(containerfile)):
            words = shlex.split(line)
            if not words or words[0].upper() not in ('COPY', 'ADD'):
                continue
            args = [word for word in words[1:] if not word.startswith('--')]
            if any(word.startswith('--from') for word in words[1:]):
                continue
            sources += [os.path.normpath(arg).lstrip('/') for arg in args[:-1]]
        return sources

    def arg_default(self, containerfile: str, name: str) -> str | None:
        for arg, value in _ARG_DEFAULT.findall(self.read(containerfile)):
            if arg == name:
                return value.strip().strip('"')
        return None

    def digest_containerfile(self, digest: Digest, name: str, containerfile: str) -> Digest:
        """Put a Containerfile and every file it copies into ``digest`` (the exact build context it uses)."""
        digest.file(name, self.path(containerfile))
        for source in self.copy_sources(containerfile):
            if source != '.':
                digest.tree('%s:%s' % (name, source), self.path(source))
        return digest

    # -- Debian package names ---------------------------------------------------------------------------------------
    def debian_install(self, containerfile: str) -> list[str]:
        """The Debian packages for a Containerfile's INSTALL (maintenance_os/debian-install.txt)."""
        if self._install is None:
            self._install = parse_debian_install(self.read(DEBIAN_INSTALL))
        rel = os.path.relpath(self.path(containerfile), os.path.join(self.root, 'maintenance_os'))
        if rel not in self._install:
            raise MaintenanceIsoError('%s has no line for %s: its INSTALL needs Debian package names (%s: pkg1 pkg2 ...)'
                                      % (DEBIAN_INSTALL, rel, rel), 'src')
        return self._install[rel]

    def live_packages(self) -> list[str]:
        return parse_package_list(self.read(LIVE_PACKAGES))

    # -- steps, targets, tool images ---------------------------------------------------------------------------
    def quadlets(self) -> dict[str, str]:
        """{Quadlet file: its Image=}."""
        directory = self.path('maintenance_os/quadlets')
        found = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith('.container'):
                images = _IMAGE.findall(self.read(os.path.join('maintenance_os/quadlets', name)))
                if len(images) != 1:
                    raise MaintenanceIsoError('maintenance_os/quadlets/%s: expected one Image= line, found %d' % (name, len(images)), 'src')
                found[name] = images[0]
        return found

    def targets(self) -> dict[str, set[str]]:
        """{target file: the units it Requires= or Wants=}."""
        directory = self.path('maintenance_os/systemd')
        found = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith('.target'):
                units: set[str] = set()
                for line in _UNIT_LIST.findall(self.read(os.path.join('maintenance_os/systemd', name))):
                    units.update(line.split())
                found[name] = units
        return found

    def tool(self, name: str, tag: str) -> ToolImage:
        containerfile = 'maintenance_os/tools/%s/Containerfile' % name
        if not os.path.isfile(self.path(containerfile)):
            raise MaintenanceIsoError('no %s for the tool image %s' % (containerfile, name), 'src')
        base = self.arg_default(containerfile, 'BASE') or ''
        parent = None
        if base.startswith(SOURCE_TOOLS_REGISTRY + '/'):
            parent_name, _sep, parent_tag = base[len(SOURCE_TOOLS_REGISTRY) + 1:].partition(':')
            parent = '%s:%s' % (parent_name, parent_tag or 'latest')
        missing = tuple(source for source in self.copy_sources(containerfile) if not os.path.lexists(self.path(source)))
        return ToolImage(name=name, containerfile=containerfile, tag=tag, parent=parent, missing=missing,
                         has_install=self.arg_default(containerfile, 'INSTALL') is not None)

    def tool_plan(self) -> ToolPlan:
        """The tool images to build: those the Quadlet steps name, and the images they are built FROM."""
        wanted: dict[str, ToolImage] = {}
        step_tool: dict[str, str] = {}
        for quadlet, image in self.quadlets().items():
            if not image.startswith(SOURCE_TOOLS_REGISTRY + '/'):
                raise MaintenanceIsoError('maintenance_os/quadlets/%s: Image=%s is not a tool image of maintenance_os/tools/ (%s/<tool>:<tag>)'
                                          % (quadlet, image, SOURCE_TOOLS_REGISTRY), 'src')
            name, _sep, tag = image[len(SOURCE_TOOLS_REGISTRY) + 1:].partition(':')
            key = '%s:%s' % (name, tag or 'latest')
            step_tool[quadlet] = key
            wanted.setdefault(key, self.tool(name, tag or 'latest'))
        store_keys = list(wanted)
        pending = list(wanted.values())
        while pending:  # the parents, up to the tools base
            tool = pending.pop()
            if tool.parent and tool.parent not in wanted:
                name, _sep, tag = tool.parent.partition(':')
                wanted[tool.parent] = self.tool(name, tag)
                pending.append(wanted[tool.parent])
        omitted: dict[str, str] = {}
        order: list[ToolImage] = []
        visiting: set[str] = set()

        def visit(key: str) -> None:
            tool = wanted[key]
            if tool in order or key in omitted:
                return
            if key in visiting:
                raise MaintenanceIsoError('the tool images build FROM each other in a cycle (%s)' % key, 'src')
            visiting.add(key)
            if tool.parent:
                visit(tool.parent)
                if tool.parent in omitted:
                    omitted[key] = 'built FROM %s, which is left out' % tool.parent
            if key not in omitted and tool.missing:
                omitted[key] = 'its Containerfile copies %s, which is not there' % ', '.join(tool.missing)
            if key not in omitted:
                order.append(tool)
            visiting.discard(key)

        for key in sorted(wanted):
            visit(key)
        omitted_steps = tuple(sorted(quadlet for quadlet, key in step_tool.items() if key in omitted))
        services = {quadlet[:-len('.container')] + '.service' for quadlet in omitted_steps}
        omitted_targets = tuple(sorted(target for target, units in self.targets().items() if units & services))
        return ToolPlan(build=tuple(order), store=tuple(wanted[key] for key in sorted(store_keys) if key not in omitted),
                        omitted_tools={key.partition(':')[0]: why for key, why in sorted(omitted.items())},
                        omitted_steps=omitted_steps, omitted_targets=omitted_targets)


def _instructions(text: str) -> t.Iterator[str]:
    """Containerfile instructions with continuation lines joined and comments dropped."""
    current = ''
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith('#')):
            continue
        if line.endswith('\\'):
            current += line[:-1] + ' '
            continue
        yield current + line
        current = ''
    if current:
        yield current


def parse_package_list(text: str) -> list[str]:
    packages: list[str] = []
    for line in text.splitlines():
        packages += line.split('#', 1)[0].split()
    return packages


def parse_debian_install(text: str) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        path, sep, packages = line.partition(':')
        if not sep or not path.strip():
            raise MaintenanceIsoError('%s line %d: expected "<Containerfile>: <packages>", got %r' % (DEBIAN_INSTALL, number, line), 'src')
        if path.strip() in mapping:
            raise MaintenanceIsoError('%s line %d: %s is listed twice' % (DEBIAN_INSTALL, number, path.strip()), 'src')
        mapping[path.strip()] = packages.split()
    return mapping
