# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A server as a QEMU VM, started directly (no libvirt): the maintenance ISO on CD 1, a task medium on CD 2, a raw disk.

::

    vm = Vm(work_dir, firmware='uefi', serial='SN-1', live_iso=iso, task_iso=task, disk_size='4G').start()
    try:
        vm.wait_for_console('provisioner:', timeout=300)
    finally:
        vm.stop()
    print(vm.tail(50))

- Accelerator: a parameter (``accel='tcg'`` by default; ``'kvm'`` only where a probe proved it fast: this project's
  machines have a /dev/kvm that breaks, see ENVIRONMENT-NOTES §6; ``l3metal_lab.accel`` picks).
- IDE CD-ROMs at index 0 and 1 (the guest's /dev/sr0 and /dev/sr1), the disk on virtio (/dev/vda), user-mode
  networking (the guest reaches the host's 127.0.0.1 at ``GUEST_HOST`` 10.0.2.2), the serial console to a file.
- ``-smbios type=1,serial=...`` is the DMI serial the dispatcher reads (/sys/class/dmi/id/product_serial), which the
  receiver files jobs under.
- UEFI: OVMF's 4M code read-only plus a copy of its variable store in ``work_dir`` (kept across boots of the same VM:
  the boot entry efibootmgr writes survives, as on a real server).
- ``no_reboot``: a reboot ends QEMU (a test sees the VM's own reset as an exit).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import typing as t
from pathlib import Path

from .waiting import Timeout

OVMF_CODE = Path('/usr/share/OVMF/OVMF_CODE_4M.fd')
OVMF_VARS = Path('/usr/share/OVMF/OVMF_VARS_4M.fd')
GUEST_HOST = '10.0.2.2'          # the host's loopback as the guest sees it (QEMU user networking)
DEFAULT_MEMORY_MIB = 2048        # rd.live.ram=1 copies the ~230 MB squashfs to RAM; 1024 MiB drops to dracut's shell
FIRMWARES = ('bios', 'uefi')
BOOT_FROM = ('cd', 'disk')


class VmError(RuntimeError):
    """QEMU did not start, or the VM did something else than awaited; the message ends with the console's last lines."""


class Vm:
    """One QEMU process; everything it writes (console.log, qemu.log, qemu.argv, the UEFI variables) lands in ``work_dir``."""

    def __init__(self, work_dir: Path, *, firmware: str = 'bios', serial: str = 'L3M-LAB-0001', live_iso: Path | None = None,
                 task_iso: Path | None = None, disk: Path | None = None, disk_size: str = '4G', boot: str = 'cd',
                 memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = 2, accel: str = 'tcg', cpu: str | None = None,
                 network: bool = True, no_reboot: bool = False, extra_args: t.Sequence[str] = ()) -> None:
        if firmware not in FIRMWARES:
            raise ValueError('firmware must be one of %s, got %r' % (FIRMWARES, firmware))
        if boot not in BOOT_FROM:
            raise ValueError('boot must be one of %s, got %r' % (BOOT_FROM, boot))
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.firmware = firmware
        self.serial = serial
        self.live_iso = live_iso
        self.task_iso = task_iso
        self.disk = Path(disk) if disk else self.work_dir / 'disk.img'
        self.disk_size = disk_size
        self.boot = boot
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.accel = accel
        self.cpu = cpu
        self.network = network
        self.no_reboot = no_reboot
        self.extra_args = list(extra_args)
        self.console_log = self.work_dir / 'console.log'
        self.qemu_log = self.work_dir / 'qemu.log'
        self.vars_file = self.work_dir / 'OVMF_VARS_4M.fd'
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None    # time.time() of the start (events carry wall-clock times)
        self._started_monotonic = 0.0

    # -- the command line -------------------------------------------------------------------------------------------
    def argv(self) -> list[str]:
        argv = ['qemu-system-x86_64', '-accel', self.accel, '-m', str(self.memory_mib), '-smp', str(self.cpus),
                '-display', 'none', '-monitor', 'none', '-serial', 'file:%s' % self.console_log,
                '-smbios', 'type=1,serial=%s' % self.serial]
        if self.cpu:
            argv += ['-cpu', self.cpu]
        if self.no_reboot:
            argv.append('-no-reboot')
        if self.network:
            argv += ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0']
        else:
            argv += ['-nic', 'none']
        argv += ['-drive', 'file=%s,format=raw,if=virtio' % self.disk]
        if self.live_iso is not None:
            argv += ['-drive', 'file=%s,format=raw,if=ide,index=0,media=cdrom,readonly=on' % self.live_iso]
        if self.task_iso is not None:
            argv += ['-drive', 'file=%s,format=raw,if=ide,index=1,media=cdrom,readonly=on' % self.task_iso]
        argv += ['-boot', 'order=d' if self.boot == 'cd' else 'order=c']
        if self.firmware == 'uefi':
            argv += ['-drive', 'if=pflash,format=raw,readonly=on,file=%s' % OVMF_CODE,
                     '-drive', 'if=pflash,format=raw,file=%s' % self.vars_file]
        return argv + self.extra_args

    # -- running -------------------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        for path in (self.live_iso, self.task_iso):
            if path is not None and not Path(path).is_file():
                raise VmError('%s does not exist' % path)
        if not self.disk.exists():
            with open(self.disk, 'wb') as handle:
                handle.truncate(_size_bytes(self.disk_size))
        if self.firmware == 'uefi' and not self.vars_file.exists():
            shutil.copyfile(OVMF_VARS, self.vars_file)

    def start(self) -> Vm:
        if self.running:
            raise VmError('the VM is already running (pid %d)' % self.process.pid)  # type: ignore[union-attr]
        self._prepare()
        argv = self.argv()
        (self.work_dir / 'qemu.argv').write_text(' '.join(argv) + '\n')
        if self.console_log.exists():  # a second boot of the same VM: keep the first console
            self.console_log.rename(self.work_dir / ('console-%s.log' % time.strftime('%H%M%S')))
        with open(self.qemu_log, 'ab') as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        time.sleep(0.3)
        if self.process.poll() is not None:
            raise VmError('qemu exited at once with %s:\n%s' % (self.process.returncode, self.qemu_log.read_text(errors='replace')[-2000:]))
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def elapsed(self) -> float:
        """Seconds since the VM was started."""
        return time.monotonic() - self._started_monotonic

    def stop(self, timeout: float = 10.0) -> None:
        """Power off (SIGTERM, then SIGKILL): a VM is never left running."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Vm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the console ---------------------------------------------------------------------------------------------------
    def console(self) -> str:
        try:
            return self.console_log.read_text(errors='replace')
        except OSError:
            return ''

    def tail(self, lines: int = 50) -> str:
        """The console's last lines (ANSI colour codes removed), for a failure message."""
        text = _strip_ansi(self.console())
        return '\n'.join(text.splitlines()[-lines:])

    def wait_for_console(self, pattern: str, timeout: float, interval: float = 1.0) -> float:
        """Wait until ``pattern`` shows on the console; returns seconds since the start.  Fails (console tail in the
        message) when the deadline passes or QEMU exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if pattern in self.console():
                return self.elapsed()
            if not self.running:
                raise VmError('the VM exited (code %s) before %r showed; last 50 console lines:\n%s' % (self.returncode, pattern, self.tail()))
            if time.monotonic() > deadline:
                raise Timeout('%r did not show on the console within %d s; last 50 console lines:\n%s' % (pattern, timeout, self.tail()))
            time.sleep(interval)

    def wait_exit(self, timeout: float) -> int:
        if self.process is None:
            raise VmError('the VM was never started')
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout('the VM did not exit within %d s; last 50 console lines:\n%s' % (timeout, self.tail())) from None

    def marks(self, patterns: t.Mapping[str, str]) -> dict[str, bool]:
        """Which of the named console patterns have shown so far."""
        text = self.console()
        return {name: pattern in text for name, pattern in patterns.items()}


def _strip_ansi(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == '\x1b':
            j = i + 1
            if j < len(text) and text[j] == '[':
                j += 1
                while j < len(text) and not text[j].isalpha():
                    j += 1
            i = j + 1
            continue
        out.append(text[i])
        i += 1
    return ''.join(out).replace('\r', '')


def _size_bytes(size: str) -> int:
    units = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
    text = size.strip().upper().rstrip('B')
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
