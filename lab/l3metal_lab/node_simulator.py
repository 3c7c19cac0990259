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

What happened is in ``report`` (a dict) once ``result()`` returns; what went wrong inside the simulation is in
``error`` as soon as it happens, and ``watch_playbook`` stops a playbook run when a node breaks down (a node that never
reports would otherwise leave the playbook waiting for it until its own timeout: a silent stall).

For a fleet, all SIMULATED nodes share this machine's cores while a real node has its own: the dispatcher and notify
processes of every node pass through one ``ProcessGate`` (``PROCESS_GATE``, 2 per core), and ``boot_timeout=None``
waits for the boot for as long as the caller's run lasts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
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
PROCESSES_PER_CORE = 2

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


class ProcessGate:
    """At most ``slots`` of the simulation's own processes (the dispatcher, notify) at once, over every node using it.

    A real node runs them on its own CPU; here all nodes share the machine's cores, and a fleet's nodes boot together
    (every reset comes at the end of the playbook's start phase): 100 nodes started 100 dispatchers at once on 2 cores
    and each ran past its 120 s timeout.  Queued here, a process starts when a slot is free, and its timeout counts from
    its own start.  ``running`` and ``peak`` are for reports."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError('a process gate needs at least one slot, not %d' % slots)
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)
        self._count_lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def reset_peak(self) -> None:
        """Start a new peak from what runs now (a bench measures it per playbook run)."""
        with self._count_lock:
            self.peak = self.running

    def run(self, argv: t.Sequence[str], **kwargs: t.Any) -> subprocess.CompletedProcess[str]:
        """``subprocess.run(argv, **kwargs)`` once a slot is free."""
        with self._semaphore:
            with self._count_lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                return subprocess.run(argv, **kwargs)  # pylint: disable=subprocess-run-check  # the caller passes check=
            finally:
                with self._count_lock:
                    self.running -= 1


PROCESS_GATE = ProcessGate(PROCESSES_PER_CORE * (os.cpu_count() or 1))
"""The gate every ``SimulatedNode`` of this Python process uses unless given its own."""


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
                 boot_timeout: float | None = 300.0, on_event: t.Callable[[str, str], None] | None = None, firstboot: str = 'run',
                 after_mark: int = 0, reboot: str = 'power_cycle', gate: ProcessGate | None = None) -> None:
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
        # how far _booted() has read the BMC's access log, and the last InsertMedia / Reset of this system seen there
        self._log_cursor = after_mark
        self._last_insert = self._last_reset = -1
        self.gate = gate or PROCESS_GATE
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
        # None: wait for the boot until stop(), for a caller whose own run bounds the simulation (bench/fleet: in a fleet
        # the resets come after every node's start phase, which grows with the fleet, so no fixed deadline fits every
        # size; at 100 nodes the longest wait was 693 s against the default 300 s counted from before the playbook)
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

    @property
    def error(self) -> BaseException | None:
        """What went wrong inside the simulation so far (None while it goes well), for a caller that cannot wait for result()."""
        return self._error

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
        """A reset of this system answered 2xx after the last InsertMedia on it: the node boots the media now.

        Reads only what the BMC logged since the last call: a fleet's nodes poll together, O(new lines) each, not O(log)."""
        new = self.bmc.requests_since(self._log_cursor)
        for index, record in enumerate(new, start=self._log_cursor):
            if record.method != 'POST' or not record.path.startswith(self.system_path + '/') or record.status >= 300:
                continue
            if record.path.endswith('/VirtualMedia.InsertMedia'):
                self._last_insert = index
            elif record.path.endswith('/ComputerSystem.Reset'):
                self._last_reset = index
        self._log_cursor += len(new)
        return self._last_insert >= 0 and self._last_reset > self._last_insert

    def _wait_for_boot(self) -> Path | None:
        started = time.monotonic()
        deadline = None if self.boot_timeout is None else started + self.boot_timeout
        while not self._booted():
            if self._stop.wait(0.2):
                return None
            if deadline is not None and time.monotonic() > deadline:
                raise NodeSimulationError('no reset after a media insertion within %g s' % (deadline - started))
        self.report['boot_wait'] = time.monotonic() - started  # from start() to the reset it boots on
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
        return self.gate.run([sys.executable, '-m', 'provisioner', *args], env=env, capture_output=True, text=True, timeout=120, check=False)

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


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """``signum`` to the process group of ``process`` if it leads one (its forks with it), else to the process alone."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
    except ProcessLookupError:  # it ended on its own just now: wait4 collects it
        pass


def watch_playbook(process: subprocess.Popen[bytes], nodes: t.Sequence[SimulatedNode], interval: float = 1.0,
                   grace: float = 30.0) -> tuple[int, t.Any, str]:
    """Wait for ``process`` (``os.wait4``: its own and its children's CPU); stop it when a SIMULATED node breaks down.

    A node whose simulation failed never reports, and the playbook would wait for it until its own timeout, per batch
    of forks: a silent stall, not a figure.  The first error seen sends SIGTERM (to the process group when the process
    leads one: start it with ``start_new_session=True`` and ansible-playbook's forks go too), SIGKILL ``grace`` seconds
    later.  Returns the wait status, the rusage, and why the process was stopped ('' if it was not)."""
    stopped_for = ''
    stopped_at = 0.0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage, stopped_for
        if not stopped_for:
            broken = [node for node in nodes if node.error is not None]
            if broken:
                stopped_for = '%d SIMULATED node(s) failed, first %s: %s' % (len(broken), broken[0].name, broken[0].error)
                stopped_at = time.monotonic()
                _signal_group(process, signal.SIGTERM)
        elif time.monotonic() - stopped_at > grace:
            _signal_group(process, signal.SIGKILL)
        time.sleep(interval)
