# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for the server behind an emulated BMC: it does what the booted node would do, with the real code.

The sushy-tools emulator boots nothing, so something has to play the node once the playbook has inserted the media
and reset the system.  ``SimulatedNode`` watches the emulator and, when it sees the reset that follows the insertion
of a task medium (in the emulator's access log, so a test cannot fool it), behaves like the booted medium:

- ``kind='maintenance_os'`` (the maintenance ISO booted): reads the task medium the emulator really downloaded, runs the
  real dispatcher ``python3 -m provisioner run --medium <file> --run-dir <dir> --dry-run`` on it, then reports like the
  systemd units of the target do, with the real ``provisioner notify``: the dispatcher's progress, ``started``/``done``
  for every step the target ``Requires=`` (read from ``maintenance_os/systemd/``), and ``success`` - or ``failed`` at
  ``fail_step``, with the last lines of the step's "journal" (a ``journalctl`` stand-in on ``PATH`` that the real
  ``notify`` reads, as it would read the node's journal).
- ``kind='esxi'`` (the vendor installer booted): reads the ``kernelopt`` of the ``boot.cfg`` the installer's boot loader
  would read (``/BOOT.CFG``, or ``/EFI/BOOT/BOOT.CFG`` when the boot override is UEFI) from the ISO the emulator
  downloaded for CD 1.  Without ``ks=`` it "waits at the boot prompt", as the stock installer does, and does nothing
  more.  With ``ks=cdrom:/KS.CFG`` it reads ``KS.CFG`` from an inserted CD, with ``ks=usb:/KS.CFG`` from the FAT
  image in the removable slot; then it "reboots as the kickstart says" (``ForceOff`` through the BMC, ``off_seconds``
  later ``On``; with ``reboot='warm'`` no power change, as many BMCs show a warm reboot) and, unless
  ``firstboot='skip'`` (a host that cannot reach the receiver), runs the kickstart's Python ``%firstboot`` scripts as
  the installed host's first boot would (``l3metal_lab.esxi.run_firstboot``: the real script against the real receiver,
  with ``-I -S``).

What happened is in ``report`` (a dict) once ``result()`` returns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import requests

from . import esxi
from .paths import COLLECTION_ROOT
from .sushy import SushyEmulator

UNIT_DIR = COLLECTION_ROOT / 'maintenance_os' / 'systemd'

_JOURNALCTL = '''#!/bin/sh
# Stand-in for the node's journalctl: prints the simulated journal of the unit given with -u.
unit=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-u" ]; then unit="$2"; shift; fi
  shift
done
cat "%s/$unit.log" 2>/dev/null || echo "-- No entries --"
'''

DEFAULT_FAILURE_LOG = (
    'Installing for x86_64-efi platform.',
    'grub-install: warning: EFI variables cannot be set on this system.',
    'grub-install: error: cannot find EFI directory.',
    'bootloader-linux: grub-install failed with exit code 1',
)


class NodeSimulationError(RuntimeError):
    """The simulated node could not do its part (no boot seen, no medium found)."""


def target_steps(target: str) -> list[str]:
    """The steps of a provisioning target, in order: its ``Requires=`` in the maintenance OS unit file."""
    steps: list[str] = []
    for line in (UNIT_DIR / target).read_text().splitlines():
        if line.startswith('Requires='):
            steps.extend(line.split('=', 1)[1].split())
    return steps


class SimulatedNode:
    """One emulated server; ``start()`` begins watching, ``result()`` waits for the outcome."""

    def __init__(self, bmc: SushyEmulator, system: int, work_dir: Path, kind: str = 'maintenance_os', fail_step: str | None = None,
                 failure_log: t.Sequence[str] = DEFAULT_FAILURE_LOG, step_seconds: float = 0.3, off_seconds: float = 6.0,
                 boot_timeout: float = 300.0, on_event: t.Callable[[str, str], None] | None = None, firstboot: str = 'run',
                 after_mark: int = 0, reboot: str = 'power_cycle') -> None:
        if kind not in ('maintenance_os', 'esxi'):
            raise ValueError('kind must be maintenance_os or esxi, not %r' % kind)
        if firstboot not in ('run', 'skip'):
            raise ValueError('firstboot must be run or skip, not %r' % firstboot)
        self.firstboot = firstboot
        if reboot not in ('power_cycle', 'warm'):
            raise ValueError('reboot must be power_cycle or warm, not %r' % reboot)
        self.reboot = reboot  # warm: the installer's reboot leaves the power state On, as many BMCs show it
        self.after_mark = after_mark  # only a boot after this place in the BMC's access log counts (a node's second install)
        self._inserted: list[dict[str, t.Any]] = []
        self.bmc = bmc
        self.system = system
        self.system_path = bmc.system_path(system)
        self.name = bmc.systems[system]['name']
        self.work_dir = Path(work_dir)
        self.kind = kind
        self.fail_step = fail_step
        self.failure_log = list(failure_log)
        self.step_seconds = step_seconds
        self.off_seconds = off_seconds
        self.boot_timeout = boot_timeout
        self.on_event = on_event
        self.report: dict[str, t.Any] = {'node': self.name, 'kind': kind, 'events': []}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name='node-%s' % self.name, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SimulatedNode:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def result(self, timeout: float = 60.0) -> dict[str, t.Any]:
        """Wait for the simulation to end and return ``report``; raise what went wrong inside it."""
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            raise NodeSimulationError('%s: still running after %g s; report so far: %s' % (self.name, timeout, self.report))
        if self._error is not None:
            raise NodeSimulationError('%s: %s' % (self.name, self._error)) from self._error
        return self.report

    def _main(self) -> None:
        try:
            medium = self._wait_for_boot()
            if medium is None:
                return
            if self.kind == 'esxi':
                self._run_installer(medium)
            else:
                self._run_maintenance_os(medium)
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to result()
            self._error = exc

    def _event(self, what: str) -> None:
        self.report['events'].append(what)
        if self.on_event is not None:
            self.on_event(self.name, what)

    # -- the boot ----------------------------------------------------------------------------------

    def _booted(self) -> bool:
        """A reset of this system answered 2xx after the last InsertMedia on it: the node boots the media now."""
        last_insert = last_reset = -1
        for index, record in enumerate(self.bmc.requests_since(self.after_mark)):
            if record.method != 'POST' or not record.path.startswith(self.system_path + '/') or record.status >= 300:
                continue
            if record.path.endswith('/VirtualMedia.InsertMedia'):
                last_insert = index
            elif record.path.endswith('/ComputerSystem.Reset'):
                last_reset = index
        return last_insert >= 0 and last_reset > last_insert

    def _wait_for_boot(self) -> Path | None:
        deadline = time.monotonic() + self.boot_timeout
        while not self._booted():
            if self._stop.wait(0.2):
                return None
            if time.monotonic() > deadline:
                raise NodeSimulationError('no reset after a media insertion within %g s' % self.boot_timeout)
        system = self.bmc.get(self.system_path)
        target = system.get('Boot', {}).get('BootSourceOverrideTarget')
        self.report['boot_override'] = target
        if target not in ('Cd', 'Usb'):
            self._event('reset, but the boot override is %s: boots the disk, not the media' % target)
            return None
        slots = [self.bmc.get(member['@odata.id']) for member in self.bmc.get(self.system_path + '/VirtualMedia')['Members']]
        inserted = [slot for slot in slots if slot.get('Inserted') and slot.get('Image')]
        self.report['inserted'] = {slot['Id']: slot['Image'] for slot in inserted}
        if len(inserted) < 2:
            raise NodeSimulationError('booted with %d inserted media (%s); the flow inserts two' % (len(inserted), self.report['inserted']))
        # the boot medium is on the first slot; the task medium is the other one
        self._inserted = inserted
        task_slot = inserted[1]
        self._event('booted from %s with the task medium on %s' % (inserted[0]['Id'], task_slot['Id']))
        return self._local_copy(task_slot)

    def _local_copy(self, slot: dict[str, t.Any]) -> Path:
        """The file the emulator downloaded for ``slot`` (newest of that name), copied: an eject deletes it."""
        name = slot.get('ImageName') or os.path.basename(slot['Image'])
        found = sorted((self.bmc.workdir / 'tmp').glob('*/' + name), key=lambda path: path.stat().st_mtime)
        copy = self.work_dir / name
        if found:
            shutil.copyfile(found[-1], copy)
            self.report['medium_source'] = 'downloaded by the BMC: %s' % found[-1]
        else:  # not expected with the emulator; read it where the BMC got it
            response = requests.get(slot['Image'], timeout=30)
            response.raise_for_status()
            copy.write_bytes(response.content)
            self.report['medium_source'] = 'fetched from %s' % slot['Image']
        self.report['medium'] = str(copy)
        return copy

    # -- the maintenance OS ------------------------------------------------------------------------

    def _provisioner(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        if path:
            env['PATH'] = path + os.pathsep + env.get('PATH', '')
        return subprocess.run([sys.executable, '-m', 'provisioner', *args], env=env, capture_output=True, text=True, timeout=120, check=False)

    def _notify(self, run_dir: Path, *args: str, path: str | None = None) -> None:
        proc = self._provisioner('notify', '--run-dir', str(run_dir), '--attempts', '3', '--timeout', '5', *args, path=path)
        if proc.returncode != 0:
            raise NodeSimulationError('provisioner notify %s: exit %d: %s' % (' '.join(args), proc.returncode, proc.stderr.strip()))

    def _run_maintenance_os(self, medium: Path) -> None:
        run_dir = self.work_dir / 'run'
        proc = self._provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run', '--wait', '5',
                                 '--attempts', '3', '--timeout', '5')
        self.report['dispatcher'] = {'rc': proc.returncode, 'stdout': proc.stdout.strip(), 'stderr': proc.stderr.strip()[-2000:]}
        if proc.returncode != 0:
            # a pre-flight failure: the dispatcher itself has sent the failed webhook
            self._event('dispatcher pre-flight failure (exit %d)' % proc.returncode)
            self.report['outcome'] = 'failed'
            self.report['failed_step'] = 'provision-dispatcher.service'
            return
        found = re.search(r'would start (\S+)', proc.stdout)
        if not found:
            raise NodeSimulationError('the dispatcher did not say which target it would start: %r' % proc.stdout)
        target = found.group(1)
        self.report['target'] = target
        self._event('dispatcher: recipe valid, would start %s' % target)
        # what the real run does once the target is queued
        self._notify(run_dir, '--status', 'progress', '--step', 'provision-dispatcher.service', '--state', 'done')
        journal = self.work_dir / 'journal'
        bin_dir = self.work_dir / 'bin'
        journal.mkdir(exist_ok=True)
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / 'journalctl'
        shim.write_text(_JOURNALCTL % journal)
        shim.chmod(0o755)
        steps = target_steps(target)
        self.report['steps'] = steps
        for step in steps:
            # ExecStartPre= / ExecStartPost= of every Quadlet step
            self._notify(run_dir, '--status', 'progress', '--step', step, '--state', 'started')
            self._event('%s started' % step)
            if self._stop.wait(self.step_seconds):
                return
            if step == self.fail_step:
                (journal / (step + '.log')).write_text('\n'.join(self.failure_log) + '\n')
                # provision-failed@%n.service: ExecStart=/usr/sbin/provisioner notify --status failed --step %i
                self._notify(run_dir, '--status', 'failed', '--step', step, path=str(bin_dir))
                self._event('%s failed' % step)
                self.report.update(outcome='failed', failed_step=step)
                return
            self._notify(run_dir, '--status', 'progress', '--step', step, '--state', 'done')
        # provision-success@<target>.service
        self._notify(run_dir, '--status', 'success')
        self._event('%s reached: success reported' % target)
        self.report['outcome'] = 'succeeded'

    # -- the ESXi installer ------------------------------------------------------------------------

    def _reset(self, reset_type: str) -> None:
        response = requests.post(self.bmc.url + self.system_path + '/Actions/ComputerSystem.Reset', json={'ResetType': reset_type},
                                 auth=self.bmc.auth, verify=self.bmc.ca_path or True, timeout=10)
        response.raise_for_status()

    def _kickstart(self, location: str, installer: Path, medium: Path) -> str | None:
        """The kickstart where ``ks=`` says, as the installer looks for it: on every CD for cdrom:, on the USB slot for usb:."""
        scheme, _sep, path = location.partition(':')
        if scheme == 'cdrom':
            for slot, copy in zip(self._inserted, (installer, medium), strict=False):
                if {'CD', 'DVD'} & set(slot.get('MediaTypes', [])):
                    data = esxi.read_iso_file(copy, path.upper() + ';1')
                    if data is not None:
                        return data.decode('utf-8')
            return None
        if scheme == 'usb':
            data = esxi.read_fat_file(medium, path)
            return data.decode('utf-8') if data is not None else None
        raise NodeSimulationError('the simulated installer reads ks= from cdrom: or usb:, not %r' % location)

    def _run_installer(self, medium: Path) -> None:
        installer = self._local_copy(self._inserted[0])
        self.report.update(installer=str(installer), medium=str(medium))  # _local_copy noted the installer as the medium
        uefi = self.bmc.get(self.system_path).get('Boot', {}).get('BootSourceOverrideMode') == 'UEFI'
        options = esxi.boot_options(installer, uefi)
        self.report['kernelopt'] = options
        if not options or not options.get('ks'):
            self._event('installer waits at its boot prompt: no ks= in the %s boot.cfg' % ('UEFI' if uefi else 'BIOS'))
            self.report['outcome'] = 'waiting'
            return
        ks_cfg = self._kickstart(str(options['ks']), installer, medium)
        if ks_cfg is None:
            self._event('installer stops: no kickstart at ks=%s' % options['ks'])
            self.report['outcome'] = 'no kickstart'
            return
        self.report['ks_cfg'] = ks_cfg
        self._event('installer read ks=%s (%d bytes) and installs' % (options['ks'], len(ks_cfg)))
        if self._stop.wait(self.step_seconds):
            return
        if self.reboot == 'warm':
            # the kickstart's "reboot" as many BMCs show it: no power change at all
            self._event('installer reboots (warm: the power state stays On)')
            if self._stop.wait(self.off_seconds):
                return
        else:
            # the kickstart's "reboot": the BMC shows the power cycle
            self._reset('ForceOff')
            self._event('installer reboots: power off')
            if self._stop.wait(self.off_seconds):
                return
            self._reset('On')
        self._event('power on: boots the installed ESXi')
        self.report['outcome'] = 'rebooted'
        if self.firstboot == 'skip':
            self._event('first boot: the host cannot reach the receiver; no %firstboot run')
            return
        runs = esxi.run_firstboot(ks_cfg, self.work_dir / 'firstboot')
        self.report['firstboot'] = [run._asdict() for run in runs]
        self._event('first boot: ran %d %%firstboot script(s), exit %s' % (len(runs), [run.rc for run in runs]))
