# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the build's commands: one log file per stage, the end of the output in the error, the programs checked first."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
import time
import typing as t

from .errors import CommandError, MissingToolError, NeedsRootError

# program -> (Debian package, what the build needs it for)
PROGRAMS = {
    'mmdebstrap': ('mmdebstrap', 'makes the Debian root file systems'),
    'podman': ('podman', 'builds the images from the Containerfiles'),
    'skopeo': ('skopeo', 'copies the tool images into the ISO\'s image store'),
    'mksquashfs': ('squashfs-tools', 'writes the live root file system and the image store'),
    'grub-mkrescue': ('grub-common', 'writes the hybrid BIOS + UEFI ISO'),
    'xorriso': ('xorriso', 'grub-mkrescue writes the ISO with it'),
    'mformat': ('mtools', 'grub-mkrescue writes the EFI boot image with it'),
    'tar': ('tar', 'unpacks the exported bootc root file system'),
}
# grub-mkrescue finds its boot images here (Debian grub-pc-bin and grub-efi-amd64-bin).
GRUB_PLATFORMS = {'/usr/lib/grub/i386-pc': 'grub-pc-bin', '/usr/lib/grub/x86_64-efi': 'grub-efi-amd64-bin'}
SEARCH_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')


def search_path() -> list[str]:
    paths = [p for p in os.environ.get('PATH', '').split(os.pathsep) if p]
    return paths + [p for p in SEARCH_PATH if p not in paths]


def find_program(name: str, paths: t.Sequence[str] | None = None) -> str | None:
    return shutil.which(name, path=os.pathsep.join(search_path() if paths is None else paths))


def require_programs(names: t.Iterable[str], paths: t.Sequence[str] | None = None) -> None:
    """Raise one ``MissingToolError`` naming every missing program and its Debian package (looked up in ``paths``,
    default: PATH plus the sbin directories, as Ansible's get_bin_path does)."""
    search = search_path() if paths is None else list(paths)
    missing = [(name,) + PROGRAMS[name] for name in dict.fromkeys(names) if find_program(name, search) is None]
    if missing:
        raise MissingToolError(missing, search)


def require_grub_platforms() -> None:
    missing = [(os.path.basename(path) + ' boot images', package, 'grub-mkrescue needs %s' % path)
               for path, package in GRUB_PLATFORMS.items() if not os.path.isdir(path)]
    if missing:
        raise MissingToolError(missing, list(GRUB_PLATFORMS))


def require_root() -> None:
    if os.geteuid() != 0:
        raise NeedsRootError('building the maintenance ISO needs root (become: true): mmdebstrap --mode=root, podman with its own '
                             'storage, image mounts and mksquashfs with owners and xattrs; check mode does not')


class Runner:
    """Runs commands, each stage's output appended to ``<log_dir>/<stage>.log``; the last lines go into the error."""

    def __init__(self, log_dir: str, env: t.Mapping[str, str] | None = None, tail_lines: int = 40) -> None:
        self.log_dir = log_dir
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault('LC_ALL', 'C.UTF-8')
        self.env['PATH'] = os.pathsep.join(search_path())
        self.tail_lines = tail_lines
        self._lock = threading.Lock()
        os.makedirs(log_dir, mode=0o700, exist_ok=True)

    def log_path(self, stage: str) -> str:
        return os.path.join(self.log_dir, '%s.log' % stage)

    def note(self, stage: str, text: str) -> None:
        with self._lock, open(self.log_path(stage), 'a', encoding='utf-8') as log:
            log.write('[%s] %s\n' % (time.strftime('%H:%M:%S'), text))

    def run(self, stage: str, argv: t.Sequence[str], env: t.Mapping[str, str] | None = None, cwd: str | None = None,
            capture: bool = False, shown: t.Sequence[str] | None = None) -> str:
        """Run ``argv``; its output goes to the stage log (and is returned with ``capture``: stdout only).

        ``shown`` is the command as logged and reported (secrets left out), when it differs from ``argv``.
        """
        display = list(shown if shown is not None else argv)
        self.note(stage, '$ ' + ' '.join(display))
        tail: collections.deque[str] = collections.deque(maxlen=self.tail_lines)
        captured: list[str] = []
        started = time.monotonic()
        with open(self.log_path(stage), 'a', encoding='utf-8', errors='replace') as log:
            try:
                proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture else subprocess.STDOUT,
                                        env=dict(self.env, **(env or {})), cwd=cwd, text=True, errors='replace')
            except OSError as exc:
                raise CommandError(stage, display, 127, str(exc), self.log_path(stage)) from None
            if capture:
                out, err = proc.communicate()
                captured.append(out)
                for line in err.splitlines():
                    log.write(line + '\n')
                    tail.append(line)
            else:
                assert proc.stdout is not None
                for line in proc.stdout:
                    log.write(line)
                    tail.append(line.rstrip('\n'))
                proc.wait()
            log.write('[exit %d after %.1f s]\n' % (proc.returncode, time.monotonic() - started))
        if proc.returncode != 0:
            raise CommandError(stage, display, proc.returncode, '\n'.join(tail), self.log_path(stage))
        return ''.join(captured)
