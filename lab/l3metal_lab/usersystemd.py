# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real systemd service manager for unit tests of unit files, on a machine where systemd is not PID 1.

``systemd --user`` runs as root in a private mount namespace: there ``/run/systemd/system`` exists
(systemd refuses to start a user instance on a system not booted with systemd), ``/run/systemd/private``
points at this manager (so ``systemctl`` without ``--user``, as the units run it, talks to it) and
``/usr/sbin`` is an overlay holding test binaries.  Nothing outside the namespace changes.

The manager runs the same job engine as PID 1: dependencies, ordering, OnFailure=, ExecCondition=,
EnvironmentFile= parsing and specifier expansion behave as on the maintenance OS.  What differs:
no system units (network-online.target, local-fs.target do not exist; Wants= on them are no-ops).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import typing as t
from pathlib import Path

from .prerequisites import require
from .waiting import wait_for

SYSTEMD = '/lib/systemd/systemd'


class UserManager:
    def __init__(self, base: Path, sbin_files: t.Mapping[str, str] | None = None) -> None:
        self.base = base
        self.runtime = base / 'runtime'
        self.config = base / 'config'
        self.unit_dir = self.config / 'systemd' / 'user'
        self.upper = base / 'sbin-upper'
        self.work = base / 'sbin-work'
        self.log_path = base / 'manager.log'
        self.sbin_files = dict(sbin_files or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime), XDG_CONFIG_HOME=str(self.config),
                    DBUS_SESSION_BUS_ADDRESS='unix:path=%s/systemd/private' % self.runtime)

    def start(self) -> UserManager:
        require(os.geteuid() == 0 and os.path.exists(SYSTEMD) and shutil.which('unshare'),
                'a private systemd instance needs root, %s and unshare' % SYSTEMD)
        for path in (self.unit_dir, self.upper, self.work):
            path.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in ('dbus.socket', 'dbus.service'):  # no session bus: systemctl uses the private socket
            (self.unit_dir / name).symlink_to('/dev/null')
        for name, text in self.sbin_files.items():
            path = self.upper / name
            path.write_text(text)
            path.chmod(0o755)
        script = '\n'.join([
            'set -e',
            'mount -t tmpfs tmpfs /run/systemd',
            'mkdir /run/systemd/system',
            'ln -s %s/systemd/private /run/systemd/private' % self.runtime,
            'mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir=%s,workdir=%s /usr/sbin' % (self.upper, self.work),
            'exec %s --user' % SYSTEMD,
        ])
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._alive() and (self.runtime / 'systemd' / 'private').is_socket(), timeout=20, what='systemd --user ready')
        return self

    def _alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError('systemd --user exited: %s' % self.log_path.read_text(errors='replace')[-2000:])
        return True

    def systemctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(['systemctl', '--user'] + list(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError('systemctl --user %s: %s' % (' '.join(args), proc.stdout))
        return proc

    def install(self, source: Path, name: str | None = None) -> Path:
        dest = self.unit_dir / (name or source.name)
        shutil.copyfile(source, dest)
        return dest

    def drop_in(self, unit: str, text: str, name: str = '50-test.conf') -> None:
        directory = self.unit_dir / (unit + '.d')
        directory.mkdir(exist_ok=True)
        (directory / name).write_text(text)

    def idle(self) -> bool:
        return 'No jobs running' in self.systemctl('list-jobs').stdout

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.systemctl('exit')
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
