# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance ISO build: stages keyed on their inputs, each rebuilt only when its key is new.

::

    base (Debian rootfs | the bootc image)  ──> image (maintenance + site + live layers) ──> initramfs ──┐
    toolbase (Debian minbase + python3) ──> tools (tool images -> image store squashfs) ──> squashfs ──┴──> iso

A stage's key is the digest of its own inputs and of the keys of the stages it is built from; the ISO is named
after its key (``<name>-<16 hex digits>.iso``), so an unchanged input set finds its ISO and builds nothing.  A
stage is built only when its result is missing and a later stage needs it: an edited dispatcher file rebuilds
image, squashfs and iso and reuses the Debian base, the tool images and the initramfs; a new kernel command line
rebuilds only the iso.  The two chains on the left are independent and run side by side.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
import typing as t

from . import bootc, debian, image, live_iso, tool_images
from .cache import Cache
from .digest import Digest
from .errors import MaintenanceIsoError
from .podman import Podman
from .runner import Runner, find_program, require_grub_platforms, require_programs, require_root
from .settings import BuildSpec
from .sources import Sources

STAGES = ('base', 'toolbase', 'tools', 'image', 'initramfs', 'squashfs', 'iso')
DEPENDS = {'iso': ('squashfs', 'initramfs'), 'squashfs': ('image', 'tools'), 'initramfs': ('image',), 'image': ('base',),
           'tools': ('toolbase',), 'toolbase': (), 'base': ()}
PROGRAMS = {'base': ('mmdebstrap', 'podman'), 'toolbase': ('mmdebstrap', 'podman'), 'tools': ('podman', 'skopeo', 'mksquashfs'),
            'image': ('podman',), 'initramfs': ('podman',), 'squashfs': ('podman', 'mksquashfs'), 'iso': ('grub-mkrescue', 'xorriso', 'mformat')}
# The placeholders that stand for this machine's paths in the commands a key covers.
SRC, OUT, DEBS = '<src>', '<output>', '<debs>'
KEEP_STAGES = 2


@dataclasses.dataclass
class Stage:
    name: str
    digest: Digest
    status: str = 'not needed'      # not needed | reused | build -> built | external (bootc base)
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return self.digest.short()


class MaintenanceIsoBuild:
    def __init__(self, spec: BuildSpec) -> None:
        self.spec = spec
        self.sources = Sources(spec.src)
        self.cache = Cache(spec.cache_dir)
        self.tool_plan = self.sources.tool_plan()
        self._check_tool_build_args()
        self.site_files = spec.site.files() if spec.site else None
        self.stages = {stage.name: stage for stage in self._stages()}
        self.iso_path = os.path.join(spec.dest, '%s-%s.iso' % (spec.name, self.stages['iso'].key))
        self.runner: Runner | None = None
        self.podman: Podman | None = None
        self.kernel_version: str | None = None
        self.warnings: list[str] = ['%s: not in the ISO, %s' % (tool, why) for tool, why in self.tool_plan.omitted_tools.items()]

    # -- keys ------------------------------------------------------------------------------------------------------
    def _check_tool_build_args(self) -> None:
        known = {tool.name for tool in self.tool_plan.build} | set(self.tool_plan.omitted_tools)
        for tool in self.spec.tool_build_args:
            if tool not in known:
                raise MaintenanceIsoError('%s is not one of the tool images the steps use (%s)' % (tool, ', '.join(sorted(known))),
                                          'tool_build_args')

    def _stages(self) -> list[Stage]:
        spec, sources = self.spec, self.sources
        base = Digest('base').value('base', spec.base)
        if spec.base == 'debian':
            base.value('suite', spec.suite).value('mirror', spec.mirror)
            base.value('mmdebstrap', debian.live_base_argv(sources.live_packages(), spec.suite, spec.mirror, OUT, DEBS, SRC))
            base.tree('files', sources.path(debian.LIVE_BASE_DIR))
        else:
            base.value('bootc_image', spec.bootc_image)
        toolbase = Digest('toolbase').value('mmdebstrap', debian.tools_base_argv(spec.suite, spec.mirror, OUT, DEBS))
        tools = Digest('tools').key('toolbase', toolbase).value('registry', spec.tools_registry)
        for containerfile, reference, args in tool_images.tool_build_args(sources, self.tool_plan, spec.tools_registry, '<toolbase>',
                                                                          spec.tool_build_args):
            sources.digest_containerfile(tools, reference, containerfile)
            tools.value(reference + ' build-args', args)
        tools.value('store', [tool.reference(spec.tools_registry) for tool in self.tool_plan.store])
        tools.value('squashfs', tool_images.mksquashfs_store_argv(OUT, OUT, spec.squashfs_level))
        img = Digest('image').key('base', base)
        sources.digest_containerfile(img, 'maintenance', spec.containerfile)
        img.value('maintenance build-args', image.maintenance_build_args(spec, sources, '<base>'))
        if spec.site_dir:
            img.tree('site', spec.site_dir)
        elif self.site_files is not None:
            img.value('site', {rel: hashlib.sha256(content).hexdigest() for rel, content in self.site_files.items()})
        if spec.site_dir or self.site_files is not None:
            sources.digest_containerfile(img, 'site layer', image.SITE_CONTAINERFILE)
        sources.digest_containerfile(img, 'live layer', image.LIVE_CONTAINERFILE)
        img.value('omit', list(self.tool_plan.omit_files))
        # The initramfs depends on the base and the packages installed on it, and on the live settings: not on the
        # dispatcher, the units or the site.
        initramfs = Digest('initramfs').key('base', base)
        initramfs.value('install', sources.arg_default(spec.containerfile, 'INSTALL'))
        initramfs.value('maintenance build-args', image.maintenance_build_args(spec, sources, '<base>'))
        initramfs.tree('live files', sources.path('maintenance_os/live/rootfs')).value('script', live_iso.INITRAMFS_SCRIPT)
        squashfs = Digest('squashfs').key('image', img).key('tools', tools)
        squashfs.value('mksquashfs', live_iso.squashfs_argv(SRC, OUT, spec.squashfs_level, bootc.excluded_paths(spec.base), OUT))
        iso = Digest('iso').key('squashfs', squashfs).key('initramfs', initramfs)
        iso.value('grub.cfg', self.grub_cfg()).value('grub-mkrescue', live_iso.grub_mkrescue_argv(OUT, SRC, spec.label))
        return [Stage('base', base), Stage('toolbase', toolbase), Stage('tools', tools), Stage('image', img),
                Stage('initramfs', initramfs), Stage('squashfs', squashfs), Stage('iso', iso)]

    def grub_cfg(self) -> str:
        title = 'l3metal maintenance OS (%s)' % self.spec.base
        return live_iso.grub_cfg(self.sources.read(live_iso.GRUB_TEMPLATE), title, self.spec.kernel_cmdline)

    # -- what exists, what is needed -------------------------------------------------------------------------------------
    def _depends(self, stage: str) -> tuple[str, ...]:
        if stage == 'image' and self.spec.base == 'bootc':
            return ()
        return DEPENDS[stage]

    def _exists(self, stage: str) -> bool:
        key = self.stages[stage].key
        if stage == 'iso':
            return os.path.isfile(self.iso_path)
        if stage in ('tools', 'initramfs', 'squashfs'):
            return self.cache.has(stage, key)
        if self.podman is None:
            return False
        return self.podman.image_exists(self.podman.tag(stage, key))

    def plan(self) -> dict[str, str]:
        """Mark each stage reused, to build, or not needed (a later stage's result exists); returns {stage: status}."""
        for stage in self.stages.values():
            stage.status = 'not needed'

        def need(name: str) -> None:
            stage = self.stages[name]
            if stage.status != 'not needed':
                return
            if not self.spec.force and self._exists(name):
                stage.status = 'reused'
                return
            stage.status = 'build'
            for dependency in self._depends(name):
                need(dependency)

        need('iso')
        if self.spec.base == 'bootc':
            self.stages['base'].status = 'external'
        return {name: stage.status for name, stage in self.stages.items()}

    def check_plan(self) -> dict[str, str]:
        """The plan without building (check mode): podman is asked about its images when it is installed; no root needed."""
        if not (find_program('podman') and os.path.isdir(self.cache.path('podman')) and os.geteuid() == 0):
            return self.plan()
        with tempfile.TemporaryDirectory(prefix='maintenance-iso-check-') as logs:  # check mode writes nothing that stays
            self.runner = Runner(logs)
            self.podman = Podman(self.runner, self.cache.path('podman'), self.spec.containers_conf)
            try:
                return self.plan()
            finally:
                self.runner = self.podman = None

    def to_build(self) -> list[str]:
        return [name for name in STAGES if self.stages[name].status == 'build']

    # -- building ----------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, t.Any]:
        started = time.monotonic()
        require_root()
        self.cache.ensure()
        self.runner = Runner(self.cache.log_dir(), env={'CONTAINERS_CONF': self.spec.containers_conf} if self.spec.containers_conf else None)
        self.podman = Podman(self.runner, self.cache.path('podman'), self.spec.containers_conf)
        require_programs(['podman'])
        with self.cache.locked():
            self.plan()
            needed = self.to_build()
            programs = [program for stage in needed for program in PROGRAMS[stage]]
            if self.spec.base == 'bootc' and 'squashfs' in needed:
                programs.append('tar')
            require_programs(programs)
            if 'iso' in needed:
                require_grub_platforms()
                os.makedirs(self.spec.dest, exist_ok=True)
            chains: list[list[str]] = []
            for names in (('base', 'image', 'initramfs'), ('toolbase', 'tools')):
                if any(name in needed for name in names):
                    chains.append([name for name in names if name in needed])
            if len(chains) > 1 and self.spec.parallel:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(chains)) as pool:
                    futures = [pool.submit(self._run_chain, chain) for chain in chains]
                    errors = [future.exception() for future in futures]
                for error in errors:
                    if error is not None:
                        raise error
            else:
                for chain in chains:
                    self._run_chain(chain)
            for name in ('squashfs', 'iso'):
                if name in needed:
                    self._run_chain([name])
            self._touch_reused()
            self._prune()
        return self.result(time.monotonic() - started)

    def _run_chain(self, names: t.Sequence[str]) -> None:
        for name in names:
            started = time.monotonic()
            assert self.runner is not None
            self.runner.note(name, 'stage %s, key %s' % (name, self.stages[name].digest.hexdigest()))
            getattr(self, '_build_' + name)()
            self.stages[name].seconds = round(time.monotonic() - started, 1)
            self.stages[name].status = 'built'

    def _tag(self, stage: str) -> str:
        assert self.podman is not None
        return self.podman.tag(stage, self.stages[stage].key)

    def _build_base(self) -> None:
        assert self.runner is not None and self.podman is not None
        work = self.cache.work_dir('base')
        tar = os.path.join(work, 'rootfs.tar')
        deb_cache = self.cache.path('debs', 'base')
        os.makedirs(deb_cache, exist_ok=True)
        self.runner.run('base', debian.live_base_argv(self.sources.live_packages(), self.spec.suite, self.spec.mirror, tar, deb_cache,
                                                      self.spec.src))
        self.podman.import_tar('base', tar, self._tag('base'))
        shutil.rmtree(work, ignore_errors=True)

    def _build_toolbase(self) -> None:
        assert self.runner is not None and self.podman is not None
        work = self.cache.work_dir('toolbase')
        tar = os.path.join(work, 'rootfs.tar')
        deb_cache = self.cache.path('debs', 'tools')
        os.makedirs(deb_cache, exist_ok=True)
        self.runner.run('toolbase', debian.tools_base_argv(self.spec.suite, self.spec.mirror, tar, deb_cache))
        self.podman.import_tar('toolbase', tar, self._tag('toolbase'))
        shutil.rmtree(work, ignore_errors=True)

    def _build_tools(self) -> None:
        assert self.runner is not None and self.podman is not None
        stage = self.stages['tools']
        with self.cache.building('tools', stage.key) as out:
            tool_images.build_tool_images(self.runner, self.podman, self.sources, self.tool_plan, self.spec.tools_registry,
                                          self._tag('toolbase'), self.spec.tool_build_args, self.cache.path('apt', 'tools'), self.spec.force)
            tool_images.write_store(self.runner, self.podman, self.tool_plan, self.spec.tools_registry, self.cache.work_dir('tools'), out,
                                    self.spec.squashfs_level)

    def _site_dir(self) -> str | None:
        if self.spec.site_dir:
            return self.spec.site_dir
        if self.site_files is None:
            return None
        return image.write_site_dir(self.site_files, self.cache.path('site', self.stages['image'].key))

    def _build_image(self) -> None:
        assert self.podman is not None
        base_image = self._tag('base') if self.spec.base == 'debian' else str(self.spec.bootc_image)
        image.build_maintenance_image(self.podman, self.spec, self.sources, base_image, self._site_dir(), self.tool_plan.omit_files,
                                      self.stages['image'].key, self.cache.path('apt', 'image'))

    def _build_initramfs(self) -> None:
        assert self.podman is not None
        with self.cache.building('initramfs', self.stages['initramfs'].key) as out:
            self.kernel_version = live_iso.make_initramfs(self.podman, self._tag('image'), out)

    def _build_squashfs(self) -> None:
        assert self.runner is not None and self.podman is not None
        store = os.path.join(self.cache.stage_dir('tools', self.stages['tools'].key), tool_images.STORE_FILE)
        excluded = bootc.excluded_paths(self.spec.base)
        with self.cache.building('squashfs', self.stages['squashfs'].key) as out:
            output = os.path.join(out, live_iso.SQUASHFS_FILE)
            if self.spec.base == 'debian':
                with self.podman.mounted('squashfs', self._tag('image')) as root:
                    self.runner.run('squashfs', live_iso.squashfs_argv(root, output, self.spec.squashfs_level, excluded, store))
            else:
                work = self.cache.work_dir('squashfs')
                root = bootc.export_rootfs(self.runner, self.podman, self._tag('image'), work)
                self.runner.run('squashfs', live_iso.squashfs_argv(root, output, self.spec.squashfs_level, excluded, store))
                shutil.rmtree(work, ignore_errors=True)

    def _build_iso(self) -> None:
        assert self.runner is not None
        work = self.cache.work_dir('iso')
        initramfs = self.cache.stage_dir('initramfs', self.stages['initramfs'].key)
        tree = live_iso.iso_tree(work, os.path.join(self.cache.stage_dir('squashfs', self.stages['squashfs'].key), live_iso.SQUASHFS_FILE),
                                 os.path.join(initramfs, 'vmlinuz'), os.path.join(initramfs, 'initrd.img'), self.grub_cfg())
        live_iso.write_iso(self.runner, tree, self.iso_path, self.spec.label, 0o600 if self.spec.has_secrets else 0o644)
        shutil.rmtree(work, ignore_errors=True)

    # -- after the build ------------------------------------------------------------------------------------------------
    def _touch_reused(self) -> None:
        """Reused stage directories count as new for pruning."""
        for name in ('tools', 'initramfs', 'squashfs'):
            if self.stages[name].status in ('reused', 'built'):
                path = self.cache.stage_dir(name, self.stages[name].key)
                if os.path.isdir(path):
                    os.utime(path)

    def _prune(self) -> None:
        """Bounded cache: the newest stage results and images (at least this build's), the newest ISOs in dest."""
        assert self.podman is not None
        try:
            for name in ('tools', 'initramfs', 'squashfs'):
                self.cache.prune(name, KEEP_STAGES)
            current = {self._tag(name) for name in ('base', 'toolbase', 'image')}
            current |= {self.podman.tag(layer, self.stages['image'].key) for layer in ('maintenance', 'site')}
            old = []
            for repository in ('base', 'toolbase', 'maintenance', 'site', 'image'):
                tags = [tag for tag in self.podman.tags(repository) if tag not in current]
                old += tags[max(0, KEEP_STAGES - 1):]
            self.podman.remove('podman', old)
            self.podman.prune_dangling()
            self.cache.prune_logs()
            if os.path.isdir(self.spec.dest):
                live_iso.prune_isos(self.spec.dest, self.spec.name, self.spec.keep, self.iso_path)
        except (OSError, MaintenanceIsoError) as exc:
            self.warnings.append('pruning the cache failed (the ISO is fine): %s' % exc)

    # -- the result ----------------------------------------------------------------------------------------------------
    def result(self, seconds: float | None = None) -> dict[str, t.Any]:
        exists = os.path.isfile(self.iso_path)
        sha256 = None
        if exists:
            sha256 = live_iso.read_sha256_file(self.iso_path + '.sha256')
            if sha256 is None:  # an ISO without its checksum file (removed by hand): write it again
                sha256 = live_iso.sha256_of(self.iso_path)
                live_iso.write_text_atomic(self.iso_path + '.sha256', live_iso.sha256_line(sha256, self.iso_path),
                                           os.stat(self.iso_path).st_mode & 0o777)
        stages = {name: {'status': stage.status, 'key': stage.key, 'seconds': stage.seconds} for name, stage in self.stages.items()}
        durations = {name: stage.seconds for name, stage in self.stages.items() if stage.status == 'built'}
        if seconds is not None:
            durations['total'] = round(seconds, 1)
        result: dict[str, t.Any] = {
            'path': self.iso_path,
            'sha256_file': self.iso_path + '.sha256',
            'sha256': sha256,
            'size': os.path.getsize(self.iso_path) if exists else None,
            'inputs_digest': self.stages['iso'].digest.hexdigest(),
            'base': self.spec.base,
            'label': self.spec.label,
            'kernel_cmdline': self.spec.kernel_cmdline,
            'stages': stages,
            'rebuilt': [name for name in STAGES if self.stages[name].status in ('built', 'build')],
            'reused': [name for name in STAGES if self.stages[name].status == 'reused'],
            'durations': durations,
            'tool_images': [tool.reference(self.spec.tools_registry) for tool in self.tool_plan.store],
            'omitted': {'tools': dict(self.tool_plan.omitted_tools), 'steps': list(self.tool_plan.omitted_steps),
                        'targets': list(self.tool_plan.omitted_targets)},
            'cache_dir': self.spec.cache_dir,
            'log_dir': self.runner.log_dir if self.runner is not None else None,
        }
        kver = os.path.join(self.cache.stage_dir('initramfs', self.stages['initramfs'].key), 'kver')
        if self.kernel_version is None and os.path.isfile(kver):
            with open(kver, encoding='utf-8') as handle:
                self.kernel_version = handle.read().strip()
        result['kernel_version'] = self.kernel_version
        return result
