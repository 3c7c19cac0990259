# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A private libvirtd + virtlogd for the lab: root, the QEMU system driver, all state in one directory.

systemd is not PID 1 on these machines and the Debian packages start no daemon, so the lab starts both by
hand.  As root, libvirtd keeps its state in fixed places (/etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/log/libvirt, /var/cache/libvirt).  To give every lab its own daemon and leave the host as it was, both
daemons run in a private mount namespace (``unshare --mount``) in which those directories are bind mounts
of subdirectories of ``state_dir``; outside, clients connect to ``<state_dir>/run/libvirt-sock``
(``uri``).  Guests' disks, media and console logs are ordinary paths, visible in and out of the namespace.

The QEMU driver looks up user ``libvirt-qemu`` and group ``kvm`` when it starts, even with
``user = "root"`` (without them: "Failed to parse user 'libvirt-qemu'"; the package that creates them,
libvirt-daemon-system, is not installed).  Inside the namespace /etc/passwd and /etc/group are bind mounts
of copies with those entries added: the host's files are not changed.

On the host this creates at most the empty mount points /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
/var/cache/libvirt (never removed: another lab's namespace may be using them).  ``stop()`` destroys every
running domain (libvirt daemonizes QEMU into a session of its own: it survives libvirtd, seen), then stops
the daemons; ``remove()``
deletes the state directory (definitions, NVRAM files under lib/, QEMU logs under log/qemu/).

Start-up: ~7.5 s cold (QEMU capability probing), ~0.25 s when ``capabilities_cache`` holds the probe of an
earlier start (copied in before and saved after; libvirt re-probes by itself when QEMU or libvirt changed).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
import typing as t
from pathlib import Path

from .paths import CACHE_DIR
from .services import Service, ServiceError

MOUNTS = (('etc', '/etc/libvirt'), ('run', '/run/libvirt'), ('lib', '/var/lib/libvirt'), ('log', '/var/log/libvirt'),
          ('cache', '/var/cache/libvirt'))
DEFAULT_CAPABILITIES_CACHE = CACHE_DIR / 'vm-lab' / 'libvirt-qemu-capabilities'

QEMU_CONF = '''\
# l3metal lab: QEMU runs as root, no confinement, no cgroups (nothing left in /sys/fs/cgroup).
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "logd"
'''
LIBVIRTD_CONF = '''\
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:stderr"
'''
# virtlogd writes the QEMU logs and, with <log file=...>, console copies; 2 MiB rollover by default.
VIRTLOGD_CONF = '''\
log_outputs = "3:stderr"
max_size = 67108864
max_backups = 1
'''
EXTRA_USERS = {'libvirt-qemu': 'libvirt-qemu:x:64055:64055:libvirt (l3metal lab namespace only):/var/lib/libvirt:/usr/sbin/nologin'}
EXTRA_GROUPS = {'kvm': 'kvm:x:64054:', 'libvirt-qemu': 'libvirt-qemu:x:64055:'}

# Harmless at start-up here (no udev database, no D-Bus, no dnsmasq, no /dev/mem): filtered from log_tail().
NOISE = ('dnsmasq', 'system bus', 'DBus', 'udevGetDMIData', 'dmidecode', '/dev/mem', 'virSecurityManagerNew')


def _group_members(group: int) -> list[int]:
    members = []
    for proc in Path('/proc').iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / 'stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != 'Z':  # fields: state ppid pgrp ...
            members.append(int(proc.name))
    return members


def _kill_group(group: int, grace: float) -> None:
    deadline = time.monotonic() + grace
    while _group_members(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_members(group):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Daemons(Service):
    """The namespace holder process: ready when libvirtd answers on its socket."""

    def __init__(self, owner: LibvirtDaemon, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def _ready(self) -> bool:
        return super()._ready() and self.owner.answers()


class LibvirtDaemon:
    """``start()`` / ``stop()`` (or a context manager); ``uri`` for clients, ``virsh(...)`` for the harness."""

    def __init__(self, state_dir: Path, capabilities_cache: Path | None = DEFAULT_CAPABILITIES_CACHE, ready_timeout: float = 60.0) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.capabilities_cache = capabilities_cache
        self.ready_timeout = ready_timeout
        self.service: _Daemons | None = None

    @property
    def socket(self) -> Path:
        return self.state_dir / 'run' / 'libvirt-sock'

    @property
    def uri(self) -> str:
        return 'qemu+unix:///system?socket=%s' % self.socket

    @property
    def log_path(self) -> Path:
        return self.state_dir / 'daemons.log'

    def qemu_log(self, domain: str) -> Path:
        """libvirt's log of one domain: the QEMU command line and QEMU's own messages."""
        return self.state_dir / 'log' / 'qemu' / ('%s.log' % domain)

    def virsh(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(['virsh', '-q', '-c', self.uri, *args], capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError('virsh %s: exit %d: %s' % (shlex.join(args), proc.returncode, (proc.stderr or proc.stdout).strip()))
        return proc

    def answers(self) -> bool:
        virtlogd = self.state_dir / 'run' / 'virtlogd-sock'  # without it every domain start fails
        return self.socket.exists() and virtlogd.exists() and self.virsh('version', check=False, timeout=10).returncode == 0

    # -- lifecycle --------------------------------------------------------------------------------------

    def _prepare(self) -> str:
        for sub, _target in MOUNTS:
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        etc = self.state_dir / 'etc'
        (etc / 'qemu.conf').write_text(QEMU_CONF)
        (etc / 'libvirtd.conf').write_text(LIBVIRTD_CONF)
        (etc / 'virtlogd.conf').write_text(VIRTLOGD_CONF)
        (etc / 'libvirt.conf').write_text('uri_default = "qemu:///system"\n')
        for name, extra, source in (('passwd', EXTRA_USERS, '/etc/passwd'), ('group', EXTRA_GROUPS, '/etc/group')):
            lines = Path(source).read_text().splitlines()
            present = {line.split(':', 1)[0] for line in lines}
            lines += [entry for key, entry in extra.items() if key not in present]
            (self.state_dir / name).write_text('\n'.join(lines) + '\n')
        if self.capabilities_cache and self.capabilities_cache.is_dir():
            target = self.state_dir / 'cache' / 'qemu' / 'capabilities'
            target.mkdir(parents=True, exist_ok=True)
            for cached in self.capabilities_cache.glob('*.xml'):
                shutil.copy2(cached, target / cached.name)
        binds = [(self.state_dir / sub, path) for sub, path in MOUNTS]
        binds += [(self.state_dir / 'passwd', '/etc/passwd'), (self.state_dir / 'group', '/etc/group')]
        lines = ['set -e']
        lines += ['mkdir -p %s' % ' '.join(shlex.quote(path) for _sub, path in MOUNTS)]
        lines += ['mount --bind %s %s' % (shlex.quote(str(src)), shlex.quote(dst)) for src, dst in binds]
        # pid files inside /run/libvirt (= <state_dir>/run): the defaults /run/virtlogd.pid and /run/libvirtd.pid are
        # outside the bind mounts, so a second lab's daemons would find them locked and exit
        lines += ['virtlogd --pid-file /run/libvirt/virtlogd.pid &', 'exec libvirtd --pid-file /run/libvirt/libvirtd.pid']
        return '\n'.join(lines)

    def start(self) -> LibvirtDaemon:
        if self.answers():
            raise ServiceError('a libvirtd already answers on %s' % self.socket)
        script = self._prepare()
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'}
        self.service = _Daemons(self, 'libvirtd', ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script],
                                self.log_path, env=env, ready_timeout=self.ready_timeout)
        self.service.start()
        self._save_capabilities()
        return self

    def _save_capabilities(self) -> None:
        if not self.capabilities_cache:
            return
        probed = sorted((self.state_dir / 'cache' / 'qemu' / 'capabilities').glob('*.xml'))
        if probed:
            self.capabilities_cache.mkdir(parents=True, exist_ok=True)
            for path in probed:
                shutil.copy2(path, self.capabilities_cache / path.name)

    def domains(self) -> list[str]:
        return [line.strip() for line in self.virsh('list', '--all', '--name').stdout.splitlines() if line.strip()]

    def qemu_pids(self) -> list[int]:
        """PIDs of the QEMU processes of this daemon's running domains (from libvirt's <name>.pid files)."""
        pids = []
        for pid_file in (self.state_dir / 'run' / 'qemu').glob('*.pid'):
            if pid_file.name == 'driver.pid':  # libvirtd's own QEMU driver lock, not a guest
                continue
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            if Path('/proc/%d' % pid).exists():
                pids.append(pid)
        return pids

    def stop(self) -> None:
        """Destroy running domains (their QEMU is outside our process group), then stop the daemons."""
        if self.service is not None and self.service.running:
            for name in self.domains():
                self.virsh('destroy', name, check=False)
        for pid in self.qemu_pids():  # anything libvirt did not reap
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.service is not None and self.service.process is not None:
            group = self.service.process.pid
            self.service.stop()  # SIGTERM to the group, waits for libvirtd only
            _kill_group(group, grace=3.0)  # virtlogd can outlive a SIGTERM (seen: still running minutes later)

    def remove(self) -> None:
        """Delete the state directory (after ``stop()``)."""
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors='replace').splitlines()
        except OSError:
            return '(no log)'
        return '\n'.join([line for line in text if not any(noise in line for noise in NOISE)][-lines:])

    def __enter__(self) -> LibvirtDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
