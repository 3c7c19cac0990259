# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's servers as libvirt domains: what one looks like, and its serial console as a file.

A server is a QEMU machine (``pc``: i440fx, IDE; or ``q35``: SATA) with
- a blank raw disk (sparse file, virtio, alias ``ua-disk0``),
- one empty CD-ROM drive per CD slot of the BMC (alias ``ua-vmedia-<slot id lowercased>``, in slot order;
  the emulator's adapter changes their media, see sushy_libvirt_adapter.py); USB slots get their drive
  when a medium is inserted (hot-plug), on the USB 3 controller defined here,
- BIOS (SeaBIOS, its messages on the serial port: ``<bios useserial='yes'/>`` = ``-machine graphics=off``)
  or UEFI (OVMF 4M code, a VARS copy in the server's directory, made from the template at first start),
- optionally a user-mode NIC (the guest reaches host 127.0.0.1 services at 10.0.2.2) without option ROM,
- SMBIOS system serial number ``serial`` (what the maintenance OS reads as the DMI product_serial and reports
  under), manufacturer "l3metal lab",
- the serial console in ``console.log`` (QEMU file chardev, appended across power cycles), no display.
Domain type ``qemu`` (TCG) unless ``domain_type='kvm'`` (see accel.py).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
import typing as t
import uuid as uuidlib
from pathlib import Path
from xml.sax.saxutils import quoteattr

OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
CD_MEDIA_TYPES = frozenset(['CD', 'DVD'])
_ANSI = re.compile(r'\x1b(\[[0-9;?=]*[A-Za-z]|[()][A-Z0-9]|[=>c])')


def slot_alias(slot: str) -> str:
    return 'ua-vmedia-' + slot.lower()


@dataclasses.dataclass
class VmSpec:
    """One server.  ``index`` (1-based) gives it a stable UUID, MAC and name."""

    index: int
    firmware: str = 'bios'           # bios | uefi
    memory_mib: int = 512
    vcpus: int = 1
    disk_gib: float = 4.0
    machine: str = 'pc'              # pc | q35
    nic: bool = True
    domain_type: str = 'qemu'        # qemu (TCG) | kvm
    name: str = ''
    uuid: str = ''
    serial: str = ''                 # SMBIOS system serial number (DMI product_serial)
    disk_image: Path | None = None   # copied onto the start of the blank disk (e.g. a bootable test image)

    def __post_init__(self) -> None:
        if self.firmware not in ('bios', 'uefi'):
            raise ValueError('firmware must be bios or uefi, not %r' % self.firmware)
        if self.machine not in ('pc', 'q35'):
            raise ValueError('machine must be pc or q35, not %r' % self.machine)
        if self.domain_type not in ('qemu', 'kvm'):
            raise ValueError('domain_type must be qemu or kvm, not %r' % self.domain_type)
        self.name = self.name or 'l3m-vm-%02d' % self.index
        self.uuid = self.uuid or str(uuidlib.UUID(int=0x33333333_3333_3333_3333_000000000000 + self.index))
        self.serial = self.serial or 'L3M-VM-%04d' % self.index
        if not re.fullmatch(r'[A-Za-z0-9._-]{1,64}', self.serial):
            raise ValueError('serial %r: use 1 to 64 letters, digits, dots, dashes or underscores' % self.serial)

    @property
    def mac(self) -> str:
        return '52:54:00:33:%02x:%02x' % (self.index // 256, self.index % 256)


@dataclasses.dataclass
class VmFiles:
    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / 'disk.raw'

    @property
    def console(self) -> Path:
        return self.directory / 'console.log'

    @property
    def nvram(self) -> Path:
        return self.directory / 'OVMF_VARS.fd'

    @property
    def xml(self) -> Path:
        return self.directory / 'domain.xml'


def create_disk(path: Path, gib: float, image: Path | None = None) -> Path:
    """A sparse raw disk of ``gib`` GiB (takes no space until written), ``image`` copied onto its start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as disk:
        if image is not None:
            with open(image, 'rb') as source:
                shutil.copyfileobj(source, disk, 1 << 20)
        disk.truncate(max(int(gib * 1024 ** 3), disk.tell()))
    return path


def domain_xml(spec: VmSpec, files: VmFiles, vmedia: t.Mapping[str, t.Mapping[str, t.Any]]) -> str:
    """The libvirt definition of ``spec``; CD drives for the CD slots of ``vmedia`` (the BMC's slot table)."""
    q = quoteattr
    cd_slots = [slot for slot, info in vmedia.items() if set(info.get('MediaTypes') or []) & CD_MEDIA_TYPES]
    if spec.machine == 'pc':
        bus, targets = 'ide', ['hdc', 'hdd', 'hda', 'hdb']
    else:
        bus, targets = 'sata', ['sda', 'sdb', 'sdc', 'sdd', 'sde', 'sdf']
    if len(cd_slots) > len(targets):
        raise ValueError('%d CD slots do not fit on the %s bus of machine %s' % (len(cd_slots), bus, spec.machine))
    if spec.firmware == 'uefi':
        firmware = ("<loader readonly='yes' type='pflash'>%s</loader><nvram template=%s>%s</nvram>"
                    % (OVMF_CODE, q(OVMF_VARS), files.nvram))
    else:
        firmware = "<bios useserial='yes'/>"
    # disks first; boot order elements are (re)written by the BMC adapter: disk, CDs, USB
    devices = [
        "<emulator>/usr/bin/qemu-system-x86_64</emulator>",
        "<disk type='file' device='disk'><driver name='qemu' type='raw' cache='unsafe' discard='unmap'/>"
        "<source file=%s/><target dev='vda' bus='virtio'/><alias name='ua-disk0'/><boot order='1'/></disk>" % q(str(files.disk)),
    ]
    for position, slot in enumerate(cd_slots):
        devices.append("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='%s' bus='%s'/><readonly/>"
                       "<alias name=%s/><boot order='%d'/></disk>" % (targets[position], bus, q(slot_alias(slot)), position + 2))
    devices.append("<controller type='usb' model='qemu-xhci'/>")
    if spec.nic:
        devices.append("<interface type='user'><mac address='%s'/><model type='virtio'/><rom enabled='no'/>"
                       "<alias name='ua-net0'/></interface>" % spec.mac)
    devices += [
        "<serial type='file'><source path=%s append='on'/><target port='0'/></serial>" % q(str(files.console)),
        "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
        "<video><model type='none'/></video>",
        "<memballoon model='none'/>",
    ]
    return '\n'.join([
        "<domain type='%s'>" % spec.domain_type,
        "  <name>%s</name>" % spec.name,
        "  <uuid>%s</uuid>" % spec.uuid,
        "  <memory unit='MiB'>%d</memory>" % spec.memory_mib,
        "  <vcpu>%d</vcpu>" % spec.vcpus,
        "  <sysinfo type='smbios'><system><entry name='manufacturer'>l3metal lab</entry><entry name='product'>VM</entry>"
        "<entry name='serial'>%s</entry><entry name='uuid'>%s</entry></system></sysinfo>" % (spec.serial, spec.uuid),
        "  <os><type arch='x86_64' machine='%s'>hvm</type>%s<smbios mode='sysinfo'/></os>" % (spec.machine, firmware),
        "  <features><acpi/><apic/></features>",
        "  <clock offset='utc'/>",
        "  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>",
        "  <devices>",
        *('    ' + d for d in devices),
        "  </devices>",
        "</domain>",
        "",
    ])


# -- the serial console ----------------------------------------------------------------------------------

def clean_console(raw: bytes) -> str:
    """Console bytes as text: terminal escape sequences (SeaBIOS, OVMF, GRUB draw with them) and CRs removed."""
    return _ANSI.sub('', raw.decode('utf-8', errors='replace')).replace('\r', '')


class Console:
    """The serial console file of one server: read it as text, wait for a line, show its tail."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def text(self, since: int = 0) -> str:
        try:
            with open(self.path, 'rb') as console:
                console.seek(since)
                return clean_console(console.read())
        except FileNotFoundError:
            return ''

    def lines(self, since: int = 0) -> list[str]:
        return [line for line in self.text(since).splitlines() if line.strip()]

    def tail(self, lines: int = 50) -> str:
        return '\n'.join(self.lines()[-lines:])

    def wait_for(self, pattern: str, timeout: float, since: int = 0, interval: float = 0.1) -> re.Match[str]:
        """The first match of ``pattern`` (regex, multiline) in the console after byte ``since``; AssertionError with
        the console's tail at the deadline."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.text(since))
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError('console %s: no %r within %g s; last lines:\n%s' % (self.path, pattern, timeout, self.tail()))
            time.sleep(interval)

    def first_output_after(self, since: int, timeout: float) -> float:
        """Seconds until the console grows past byte ``since`` (the first output of a boot)."""
        start = time.monotonic()
        deadline = start + timeout
        while self.size() <= since:
            if time.monotonic() > deadline:
                raise AssertionError('console %s: no output within %g s' % (self.path, timeout))
            time.sleep(0.02)
        return time.monotonic() - start
