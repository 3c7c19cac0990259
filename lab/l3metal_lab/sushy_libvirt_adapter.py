# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sushy-tools' libvirt driver made to behave like a real BMC for the lab.  Runs INSIDE the emulator process.

Start it instead of ``sushy-emulator`` (same arguments)::

    python sushy_libvirt_adapter.py --config emulator.conf

It imports sushy-tools, replaces the libvirt systems driver by ``LabLibvirtDriver`` (a subclass) and adds two
Flask hooks; everything else (routes, auth, TLS, virtual-media downloads, state) is sushy-tools as shipped.
What the stock driver does, and what changes here (verified against sushy-tools 2.2.0, libvirt 9.0, QEMU 7.2):

Virtual media
    Stock: ``InsertMedia`` downloads the URL into ``$TMPDIR/tmpXXXX/<name>`` (vmedia StaticDriver), then the
    libvirt driver stream-uploads a second copy into storage pool ``default`` and *replaces every* ``<disk
    device='cdrom'>`` of the domain by one new cdrom (IDE ``hdc`` / SATA ``sdx``), in the persistent definition
    only: a running guest sees nothing until its next cold start.  Slots are mapped by device *type*
    (``Cd`` -> cdrom, ``Floppy`` -> floppy); any other slot id (``Cd2``, ``Usb``) answers 400 ``Unknown device``
    *after* the download, and the slot then still reports ``Inserted: true`` with the file left behind.  Eject
    removes the cdrom device itself (the drive disappears) and leaves the pool volume and the empty tmp dir.

    Here: every slot of ``SUSHY_EMULATOR_VMEDIA_DEVICES`` is a drive of its own.  A slot whose ``MediaTypes``
    has CD/DVD is a cdrom drive that is always present (alias ``ua-vmedia-<slot id lowercased>``, defined with
    the domain, see vm.py); insert/eject change its *medium*, live and in the persistent definition, with
    libvirt's media change (``updateDeviceFlags``, forced so a guest's tray lock cannot refuse an eject).  A
    slot with USBStick/Floppy is a USB removable disk (the FAT task medium) hot-plugged on insert and
    unplugged on eject.  The drive uses the file the BMC downloaded (no second copy, no storage pool); a
    replaced or ejected medium's download and its tmp dir are deleted.  A failed attach undoes the slot state.

Boot override
    Stock: ``BootSourceOverrideEnabled`` is ignored and always reported ``Continuous``; ``Disabled`` alone is a
    400; the target becomes ``<boot order>`` on every device of that type (persistent definition only, so a
    guest-initiated reboot keeps the old order); unknown targets (``Usb``) are 500s.

    Here: the override (target + Once/Continuous/Disabled) is kept in the domain's metadata.  The effective
    boot order is ``<boot order>`` in the persistent definition (used at the next cold start) AND QEMU's
    ``bootindex`` of the running devices, set with ``qom-set`` through libvirt's QEMU monitor pass-through
    (QEMU rebuilds the firmware's ``bootorder`` from it at every reset, so a guest reboot follows it; the
    boot in progress is not affected).  Order: the override target's devices (CD slots in slot order),
    then the default order disk, CD slots, USB slot, as a server's BIOS order would fall through; drives
    without a medium get no boot index (SeaBIOS waits ~30 s on an empty CD drive).  ``Once``
    is consumed when a boot starts: at power-on by this BMC (synchronously, right after ``create()``) or at a
    guest reset (libvirt ``REBOOT`` event, handled by a worker thread).  It then reports ``Disabled`` / ``None``.

Power
    Stock: On/ForceOn (create), ForceOff (destroy), GracefulShutdown (ACPI), GracefulRestart (libvirt
    reboot: ACPI), ForceRestart (destroy + create), Nmi; anything else answers 204 and does nothing.
    Here: the same, plus ``PowerCycle`` (destroy if on, then create) and ``PushPowerButton`` (ACPI power
    button when on, create when off); anything else is a 400 naming the allowed values.  ``PowerState`` is
    libvirt's ``isActive()``: a guest that powers itself off shows ``Off`` (``on_poweroff=destroy``).

Also: ``GET /Systems/<id>`` no longer fails with a 500 when the guest powers off during the request (stock
``get_total_cpus`` race), and reports ``Model: l3metal lab VM`` (stock: no Model; the collection's quirks table
keeps its "override frequency not stored" entry for the stock emulator only) and the domain's SMBIOS serial as
``SerialNumber``.

Not handled (documented limits): secure boot (the stock code is kept but untested here), ``UefiTarget`` /
``BootNext`` / ``UefiHttp`` overrides (400), PATCHing ``Boot`` together with other properties (400), a PATCH
while the emulator is down (nothing to intercept), ``REBOOT`` events while the emulator is down (a ``Once``
set while the guest was running then survives that guest reset).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import queue
import re
import string
import sys
import tempfile
import threading
import time
import typing as t
import xml.etree.ElementTree as ET

import flask
import libvirt
import libvirt_qemu
from sushy_tools import error
from sushy_tools.emulator import api_utils
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems import libvirtdriver

NS = 'https://l3metal.invalid/xmlns/lab-bmc/1'
NS_PREFIX = 'l3m'
ALIAS_PREFIX = 'ua-vmedia-'
CD_MEDIA_TYPES = frozenset(['CD', 'DVD'])
REMOVABLE_MEDIA_TYPES = frozenset(['USBStick', 'Floppy'])
ENABLED_VALUES = ('Once', 'Continuous', 'Disabled')
MODEL = 'l3metal lab VM'  # ComputerSystem.Model of every system behind this adapter
RESET_TYPES = ('On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi',
               'PushPowerButton')
BOOT_KEYS = frozenset(['BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'])
_SYSTEM_PATH = re.compile(r'^/redfish/v1/Systems/(?P<identity>[^/]+)/?$')

Element = ET.Element


def slot_kind(slot: str, info: t.Mapping[str, t.Any]) -> str:
    """``cdrom`` or ``usb`` for a slot of SUSHY_EMULATOR_VMEDIA_DEVICES, from its MediaTypes."""
    types = set(info.get('MediaTypes') or [])
    if types & CD_MEDIA_TYPES:
        return 'cdrom'
    if types & REMOVABLE_MEDIA_TYPES:
        return 'usb'
    raise ValueError('virtual media slot %s: MediaTypes %s has neither CD/DVD nor USBStick/Floppy' % (slot, sorted(types)))


def slot_alias(slot: str) -> str:
    return ALIAS_PREFIX + slot.lower()


# -- pure parts: domain XML and Redfish documents in, decisions out (tests/unit/lab) -------------------------

def alias_of(element: Element) -> str:
    alias = element.find('alias')
    return '' if alias is None else alias.get('name', '')


def find_slot_disk(tree: Element, slot: str, slots: t.Mapping[str, str]) -> Element | None:
    """The <disk> of ``slot`` (``slots``: slot id -> cdrom|usb): by its alias, else (domains defined elsewhere) the n-th
    unaliased cdrom for the n-th CD slot."""
    alias = slot_alias(slot)
    disks = tree.findall('devices/disk')
    for disk in disks:
        if disk.find("alias[@name='%s']" % alias) is not None:
            return disk
    if slots.get(slot) != 'cdrom':
        return None
    cd_slots = [s for s, kind in slots.items() if kind == 'cdrom']
    plain = [d for d in disks if d.get('device') == 'cdrom' and not alias_of(d).startswith(ALIAS_PREFIX)]
    index = cd_slots.index(slot)
    return plain[index] if index < len(plain) else None


def disk_source(disk: Element | None) -> str | None:
    source = None if disk is None else disk.find('source')
    return None if source is None else source.get('file')


def device_key(element: Element) -> str:
    """A bootable device as a key: ``dev:<target dev>`` for a disk, ``mac:<address>`` for a NIC."""
    if element.tag == 'interface':
        mac = element.find('mac')
        return 'mac:%s' % (mac.get('address') if mac is not None else '')
    target = element.find('target')
    return 'dev:%s' % (target.get('dev') if target is not None else '')


def boot_keys(tree: Element, slots: t.Mapping[str, str], target: str) -> list[str]:
    """The boot order for override ``target`` (Redfish name; ``None``/``Hdd``: the default order), as device keys.

    The target's devices first (CD slots in slot order), then the default order: system disk, CD slots, USB slot, as
    a server's BIOS order falls through.  CD drives without a medium get no place: SeaBIOS spends ~30 s on an empty
    one ("Could not read from CDROM (code 0003)")."""
    disks = tree.findall('devices/disk')
    system_disks = [d for d in disks if d.get('device') == 'disk' and not alias_of(d).startswith(ALIAS_PREFIX)]
    cds = [d for d in (find_slot_disk(tree, s, slots) for s, kind in slots.items() if kind == 'cdrom') if disk_source(d)]
    usbs = [find_slot_disk(tree, s, slots) for s, kind in slots.items() if kind == 'usb']
    nics = tree.findall('devices/interface')

    def keys(elements: t.Iterable[Element | None]) -> list[str]:
        return [device_key(e) for e in elements if e is not None]

    default = keys(system_disks) + keys(cds) + keys(usbs)
    first = {'Cd': keys(cds), 'Usb': keys(usbs), 'Pxe': keys(nics)}.get(target, [])
    return first + [k for k in default if k not in first]


def with_boot_order(tree: Element, order: t.Sequence[str]) -> Element:
    """A copy of a persistent definition whose ``<boot order>`` elements say ``order`` (and no ``<os><boot dev>``)."""
    tree = copy.deepcopy(tree)
    for os_element in tree.findall('os'):
        for boot in os_element.findall('boot'):
            os_element.remove(boot)
    for element in tree.findall('devices/disk') + tree.findall('devices/interface'):
        for boot in element.findall('boot'):
            element.remove(boot)
        key = device_key(element)
        if key in order:
            ET.SubElement(element, 'boot', order=str(list(order).index(key) + 1))
    return tree


def allowed_targets(tree: Element, slots: t.Mapping[str, str]) -> list[str]:
    """BootSourceOverrideTarget@Redfish.AllowableValues: what this machine can really boot from."""
    allowed = ['None']
    if any(iface.find("rom[@enabled='no']") is None for iface in tree.findall('devices/interface')):
        allowed.append('Pxe')
    if 'cdrom' in slots.values():
        allowed.append('Cd')
    if 'usb' in slots.values():
        allowed.append('Usb')
    allowed.append('Hdd')
    return allowed


def parse_override(raw: str | None) -> tuple[str, str]:
    """(target, enabled) from the domain's ``<l3m:boot>`` metadata (None: none stored); ``('None', 'Disabled')`` when off."""
    if raw is None:
        return 'None', 'Disabled'
    node = ET.fromstring(raw)
    target, enabled = node.get('target') or 'None', node.get('enabled') or 'Disabled'
    return ('None', 'Disabled') if enabled == 'Disabled' or target == 'None' else (target, enabled)


def override_xml(target: str, enabled: str) -> str:
    return ET.tostring(Element('boot', target=target, enabled=enabled)).decode()


def merge_override(current: tuple[str, str], target: str | None, enabled: str | None, allowed: t.Sequence[str]) -> tuple[str, str]:
    """The override after a PATCH of ``target``/``enabled`` (None: not sent) over ``current``, as a BMC keeps it.

    ``None``/``Disabled`` clears it; a target alone is ``Once`` unless an override is already enabled (it keeps its
    frequency); ``Enabled`` alone applies to the current target.  Values outside the allowed ones are 400s."""
    if enabled is not None and enabled not in ENABLED_VALUES:
        raise error.BadRequest('BootSourceOverrideEnabled %r is not one of %s' % (enabled, ', '.join(ENABLED_VALUES)))
    if target is not None and target not in allowed:
        raise error.BadRequest('BootSourceOverrideTarget %r is not one of %s' % (target, ', '.join(allowed)))
    current_target, current_enabled = current
    if target == 'None' or enabled == 'Disabled':
        return 'None', 'Disabled'
    if target is None:
        if current_target == 'None':
            raise error.BadRequest('BootSourceOverrideTarget is required to enable a boot override (none is set)')
        target = current_target
    if enabled is None:
        enabled = current_enabled if current_enabled != 'Disabled' else 'Once'
    return target, enabled


def parse_boot_patch(body: t.Mapping[str, t.Any]) -> tuple[str | None, str | None, str | None]:
    """(target, enabled, mode) of a ``PATCH /Systems/<id>`` body that holds ``Boot``; 400 for what the lab BMC does not take."""
    extra = sorted(set(body) - {'Boot', '@odata.etag'})
    if extra:
        raise error.BadRequest('the lab BMC takes Boot alone in a PATCH; also sent: %s' % ', '.join(extra))
    boot = body['Boot']
    if not isinstance(boot, dict):
        raise error.BadRequest('Boot must be an object')
    unsupported = sorted(set(boot) - BOOT_KEYS)
    if unsupported:
        raise error.BadRequest('Boot properties not supported by the lab BMC: %s (supported: %s)' % (', '.join(unsupported), ', '.join(sorted(BOOT_KEYS))))
    target, enabled, mode = (boot.get(k) for k in ('BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode'))
    for name, value in (('BootSourceOverrideTarget', target), ('BootSourceOverrideEnabled', enabled), ('BootSourceOverrideMode', mode)):
        if value is not None and not isinstance(value, str):
            raise error.BadRequest('%s must be a string, not %r' % (name, value))
    if mode is not None and mode not in ('UEFI', 'Legacy'):
        raise error.BadRequest('BootSourceOverrideMode %r is not one of UEFI, Legacy' % (mode,))
    return target, enabled, mode


def rewrite_system(data: dict[str, t.Any], override: tuple[str, str], allowed: t.Sequence[str], mode: str, serial: str | None) -> dict[str, t.Any]:
    """The ComputerSystem document as this BMC reports it: the stored override, the real allowed targets and reset types,
    Model (not the stock emulator: see the collection's quirks table) and the SMBIOS serial as SerialNumber."""
    data = copy.deepcopy(data)
    data['Model'] = MODEL
    if serial:
        data['SerialNumber'] = serial
    boot = data.setdefault('Boot', {})
    for key in ('UefiTargetBootSourceOverride', 'HttpBootUri'):
        boot.pop(key, None)
    boot.update({'BootSourceOverrideEnabled': override[1], 'BootSourceOverrideTarget': override[0],
                 'BootSourceOverrideTarget@Redfish.AllowableValues': list(allowed), 'BootSourceOverrideMode': mode})
    reset = data.get('Actions', {}).get('#ComputerSystem.Reset')
    if isinstance(reset, dict):
        reset['ResetType@Redfish.AllowableValues'] = list(RESET_TYPES)
    return data


def power_actions(reset_type: str, active: bool) -> list[str]:
    """What a Reset does to a domain that is running (``active``) or not, as libvirt calls: create, destroy, shutdown
    (ACPI power button), reboot (ACPI), nmi.  Nothing for a reset to the state it is in; 400 for an unknown type."""
    if reset_type not in RESET_TYPES:
        raise error.BadRequest('ResetType %r is not one of %s' % (reset_type, ', '.join(RESET_TYPES)))
    running = {'On': [], 'ForceOn': [], 'ForceOff': ['destroy'], 'GracefulShutdown': ['shutdown'], 'GracefulRestart': ['reboot'],
               'ForceRestart': ['destroy', 'create'], 'PowerCycle': ['destroy', 'create'], 'Nmi': ['nmi'], 'PushPowerButton': ['shutdown']}
    stopped = {'On': ['create'], 'ForceOn': ['create'], 'PowerCycle': ['create'], 'PushPowerButton': ['create']}
    return list(running[reset_type] if active else stopped.get(reset_type, []))


def strip_runtime(disk: Element) -> Element:
    """A live <disk> without what libvirt adds at run time and refuses in an update (source index, backing store)."""
    disk = copy.deepcopy(disk)
    for child in disk.findall('backingStore'):
        disk.remove(child)
    source = disk.find('source')
    if source is not None:
        source.attrib.pop('index', None)
    return disk


def with_source(disk: Element, image: str | None) -> Element:
    """A copy of a <disk> holding medium ``image`` (a file), or no medium (None)."""
    disk = copy.deepcopy(disk)
    for child in disk.findall('source') + disk.findall('backingStore'):
        disk.remove(child)
    if image:
        driver = disk.find('driver')
        position = list(disk).index(driver) + 1 if driver is not None else 0
        disk.insert(position, Element('source', file=image))
    return disk


def free_dev(used: t.Iterable[str | None], prefix: str, letters: str = string.ascii_lowercase) -> str:
    """The first target dev ``<prefix><letter>`` (letters in the order given) not in ``used``."""
    taken = set(used)
    for letter in letters:
        if prefix + letter not in taken:
            return prefix + letter
    raise error.FishyError('no free %sX device name left' % prefix)


class LabLibvirtDriver(libvirtdriver.LibvirtDriver):
    """The stock libvirt systems driver with real media slots, Once boot overrides and complete reset types."""

    _lock = threading.RLock()
    _slots: dict[str, str] = {}
    _download_dir: str = tempfile.gettempdir()
    _events: _RebootWatcher | None = None

    @classmethod
    def initialize(cls, config: t.Any, logger: t.Any, uri: str | None = None, *args: t.Any, **kwargs: t.Any) -> type[LabLibvirtDriver]:
        super().initialize(config, logger, uri, *args, **kwargs)
        devices = config.get('SUSHY_EMULATOR_VMEDIA_DEVICES') or {
            'Cd': {'MediaTypes': ['CD', 'DVD']}, 'Floppy': {'MediaTypes': ['Floppy', 'USBStick']}}  # the vmedia driver's default
        cls._slots = {slot: slot_kind(slot, info) for slot, info in devices.items()}
        cls._download_dir = os.path.realpath(tempfile.gettempdir())  # where the vmedia driver downloads to
        if cls._events is None:
            cls._events = _RebootWatcher(cls._uri, cls(), logger)
            cls._events.start()
        return cls

    @property
    def driver(self) -> str:
        return '<libvirt+l3metal-lab>'

    # -- domain XML ---------------------------------------------------------------------------------

    @staticmethod
    def _xml(domain: t.Any, live: bool = False) -> Element:
        # no VIR_DOMAIN_XML_SECURE: refused on read-only connections, and the lab's domains hold no secrets
        return ET.fromstring(domain.XMLDesc(0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE))

    def _define(self, domain: t.Any, tree: Element) -> None:
        del domain  # the memoized domain's own connection object is closed (libvirt_open); define on a fresh one
        with libvirtdriver.libvirt_open(self._uri) as conn:
            conn.defineXML(ET.tostring(tree).decode())

    def _slot_disk(self, tree: Element, slot: str) -> Element | None:
        return find_slot_disk(tree, slot, self._slots)

    # -- virtual media --------------------------------------------------------------------------------

    def _kind(self, slot: str) -> str:
        try:
            return self._slots[slot]
        except KeyError:
            raise error.BadRequest('no virtual media slot %r on this BMC (slots: %s)' % (slot, ', '.join(self._slots))) from None

    def set_boot_image(self, identity: str, device: str, boot_image: str | None = None, write_protected: bool = True) -> None:
        """Insert (``boot_image``: the downloaded file) or eject (None) the medium of slot ``device``."""
        kind = self._kind(device)
        with self._lock:
            domain = self._get_domain(identity)
            previous = disk_source(self._slot_disk(self._xml(domain), device))
            try:
                if kind == 'cdrom':
                    self._change_cd(domain, device, boot_image)
                else:
                    self._change_usb(domain, device, boot_image, write_protected)
                self._apply_boot_order(domain)
            except (libvirt.libvirtError, error.FishyError) as exc:
                self._empty_drive(domain, device, kind)
                self._undo_slot_state(device)
                if boot_image:
                    self._forget_download(boot_image)
                raise error.FishyError('virtual media slot %s of %s: %s' % (device, identity, exc)) from exc
        if previous and previous != boot_image:
            self._forget_download(previous)

    def _change_cd(self, domain: t.Any, slot: str, image: str | None) -> None:
        config = self._xml(domain)
        disk = self._slot_disk(config, slot)
        if disk is None:
            # A domain defined without this drive: add it to the definition (an IDE/SATA drive cannot be hot-plugged).
            self._add_cd_drive(domain, config, slot, image)
            return
        target = disk.find('target')
        assert target is not None
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
        domain.updateDeviceFlags(ET.tostring(with_source(disk, image)).decode(), flags)
        if domain.isActive():
            live = self._xml(domain, live=True).find("devices/disk/target[@dev='%s']/.." % target.get('dev'))
            if live is not None:
                live_flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
                domain.updateDeviceFlags(ET.tostring(with_source(strip_runtime(live), image)).decode(), live_flags)
            else:
                self._logger.warning('slot %s: drive %s is not in the running guest; the medium shows after the next cold start',
                                     slot, target.get('dev'))

    def _add_cd_drive(self, domain: t.Any, config: Element, slot: str, image: str | None) -> None:
        devices = config.find('devices')
        assert devices is not None
        bus = self._default_controller(config)
        used = {d.get('dev') for d in config.findall('devices/disk/target')}
        prefix = 'hd' if bus == 'ide' else 'sd'
        dev = free_dev(used, prefix, string.ascii_lowercase[2:] + string.ascii_lowercase[:2])
        disk = ET.SubElement(devices, 'disk', type='file', device='cdrom')
        ET.SubElement(disk, 'driver', name='qemu', type='raw')
        if image:
            ET.SubElement(disk, 'source', file=image)
        ET.SubElement(disk, 'target', dev=dev, bus=bus)
        ET.SubElement(disk, 'readonly')
        ET.SubElement(disk, 'alias', name=slot_alias(slot))
        self._define(domain, config)
        self._logger.warning('slot %s: added cdrom drive %s to %s; the guest sees it after the next cold start', slot, dev, domain.name())

    def _change_usb(self, domain: t.Any, slot: str, image: str | None, write_protected: bool) -> None:
        alias = slot_alias(slot)
        active = domain.isActive()
        config = self._xml(domain)
        old = self._slot_disk(config, slot)
        if old is not None:
            domain.detachDeviceFlags(ET.tostring(old).decode(), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        if active:
            live_old = self._xml(domain, live=True).find("devices/disk/alias[@name='%s']/.." % alias)
            if live_old is not None:
                domain.detachDeviceFlags(ET.tostring(live_old).decode(), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                _wait(lambda: self._xml(domain, live=True).find("devices/disk/alias[@name='%s']" % alias) is None, 10,
                      'USB medium of slot %s unplugged' % slot)
        if not image:
            return
        used = {d.get('dev') for d in self._xml(domain).findall('devices/disk/target')}
        if active:
            used |= {d.get('dev') for d in self._xml(domain, live=True).findall('devices/disk/target')}
        dev = free_dev(used, 'sd')
        disk = Element('disk', type='file', device='disk')
        ET.SubElement(disk, 'driver', name='qemu', type='raw')
        ET.SubElement(disk, 'source', file=image)
        ET.SubElement(disk, 'target', dev=dev, bus='usb', removable='on')
        if write_protected:
            ET.SubElement(disk, 'readonly')
        ET.SubElement(disk, 'alias', name=alias)
        xml = ET.tostring(disk).decode()
        domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        if active:
            domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def _empty_drive(self, domain: t.Any, slot: str, kind: str) -> None:
        try:
            if kind == 'cdrom':
                self._change_cd(domain, slot, None)
            else:
                self._change_usb(domain, slot, None, True)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, the original error matters more
            self._logger.warning('slot %s: could not empty the drive after a failed change: %s', slot, exc)

    def _undo_slot_state(self, slot: str) -> None:
        """After a failed attach, make the slot report what the drive holds (nothing) instead of the failed insert."""
        try:
            identity = (flask.request.view_args or {}).get('identity')
            if identity:
                t.cast(t.Any, flask.current_app).vmedia.eject_image(identity, slot)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # best effort, the original error matters more
            self._logger.warning('slot %s: could not reset the slot state after a failed attach: %s', slot, exc)

    def _forget_download(self, path: str) -> None:
        """Delete a medium the BMC downloaded (only files in its download dir) and the empty tmp dir around it."""
        real = os.path.realpath(path)
        if os.path.commonpath([real, self._download_dir]) != self._download_dir:
            return
        try:
            os.unlink(real)
        except FileNotFoundError:
            pass
        parent = os.path.dirname(real)
        if parent != self._download_dir and os.path.dirname(parent) == self._download_dir:
            try:
                os.rmdir(parent)
            except OSError:
                pass

    # -- boot override --------------------------------------------------------------------------------

    def get_boot_override(self, identity: str) -> tuple[str, str]:
        """(target, enabled) as Redfish reports them: ``('None', 'Disabled')`` when there is no override."""
        domain = self._get_domain(identity, readonly=True)
        try:
            raw = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                raise
            return parse_override(None)
        return parse_override(raw)

    def _store_override(self, domain: t.Any, target: str, enabled: str) -> None:
        xml = override_xml(target, enabled)
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if domain.isActive() else 0)
        domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, NS_PREFIX, NS, flags)

    def allowed_targets(self, identity: str) -> list[str]:
        return allowed_targets(self._xml(self._get_domain(identity, readonly=True)), self._slots)

    def smbios_serial(self, identity: str) -> str | None:
        """The SMBIOS system serial number of the domain (``<sysinfo>``), as a server's BMC reports SerialNumber."""
        tree = self._xml(self._get_domain(identity, readonly=True))
        return tree.findtext("sysinfo/system/entry[@name='serial']")

    def get_boot_device(self, identity: str) -> str:
        return self.get_boot_override(identity)[0]

    def set_boot_device(self, identity: str, boot_source: str) -> None:
        """Called by sushy-tools' own PATCH handler (not reached for plain Boot PATCHes, see ``before_request``)."""
        self.set_boot_override(identity, boot_source, None)

    def set_boot_override(self, identity: str, target: str | None, enabled: str | None) -> None:
        """Store the override and apply its boot order; ``None`` keeps the current value (a new target is Once by default)."""
        allowed = self.allowed_targets(identity)
        with self._lock:
            domain = self._get_domain(identity)
            target, enabled = merge_override(self.get_boot_override(identity), target, enabled, allowed)
            self._store_override(domain, target, enabled)
            self._apply_boot_order(domain)
            self._logger.info('boot override of %s: %s (%s)', identity, target, enabled)

    def _boot_started(self, domain: t.Any, cause: str) -> None:
        """A boot has begun (its boot order is fixed): a Once override is used up."""
        with self._lock:
            target, enabled = self.get_boot_override(domain.UUIDString())
            if enabled != 'Once':
                return
            self._store_override(domain, 'None', 'Disabled')
            self._apply_boot_order(domain)
            self._logger.info('boot override %s (Once) of %s used by %s; now Disabled', target, domain.UUIDString(), cause)

    def _apply_boot_order(self, domain: t.Any) -> None:
        """Make the stored override (or the default order) the boot order: persistent definition and running QEMU."""
        target, _enabled = self.get_boot_override(domain.UUIDString())
        config = self._xml(domain)
        order = boot_keys(config, self._slots, target)
        self._define(domain, with_boot_order(config, order))
        if not domain.isActive():
            return
        live = self._xml(domain, live=True)
        devices = [(device_key(e), alias_of(e)) for e in live.findall('devices/disk') + live.findall('devices/interface')]
        devices = [(key, alias) for key, alias in devices if alias]
        # Indices must stay unique at every step: clear all, then assign.
        for _key, alias in devices:
            self._qom_set_bootindex(domain, alias, -1)
        for key, alias in devices:
            if key in order:
                self._qom_set_bootindex(domain, alias, order.index(key) + 1)

    @staticmethod
    def _qom_set_bootindex(domain: t.Any, alias: str, index: int) -> None:
        command = {'execute': 'qom-set', 'arguments': {'path': '/machine/peripheral/%s' % alias, 'property': 'bootindex', 'value': index}}
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(domain, json.dumps(command), libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT))
        if 'error' in reply:
            raise error.FishyError('qom-set bootindex=%d on %s: %s' % (index, alias, reply['error'].get('desc')))

    # -- boot mode --------------------------------------------------------------------------------------

    def get_boot_mode(self, identity: str) -> str:
        return super().get_boot_mode(identity) or 'Legacy'  # no <loader>: SeaBIOS

    def set_boot_mode(self, identity: str, boot_mode: str) -> None:
        if boot_mode != 'Legacy':
            super().set_boot_mode(identity, boot_mode)  # UEFI: loader + nvram from SUSHY_EMULATOR_BOOT_LOADER_MAP
            return
        with self._lock:
            domain = self._get_domain(identity)
            tree = self._xml(domain)
            for os_element in tree.findall('os'):
                os_element.attrib.pop('firmware', None)
                for child in os_element.findall('loader') + os_element.findall('nvram') + os_element.findall('firmware'):
                    os_element.remove(child)
            self._define(domain, tree)

    def get_total_cpus(self, identity: str) -> int | None:
        # Stock: isActive() then maxVcpus(); a guest that powers off in between makes GET /Systems/<id> a 500
        # ("domain is not running"), which is exactly when a test polls PowerState.
        try:
            return t.cast('int | None', super().get_total_cpus(identity))
        except libvirt.libvirtError:
            vcpu = self._xml(self._get_domain(identity, readonly=True)).findtext('vcpu')
            return int(vcpu) if vcpu else None

    # -- power ------------------------------------------------------------------------------------------

    def set_power_state(self, identity: str, state: str) -> None:
        domain = self._get_domain(identity)
        try:
            for action in power_actions(state, bool(domain.isActive())):
                if action == 'create':
                    self._power_on(domain)
                elif action == 'destroy':
                    domain.destroy()
                elif action == 'shutdown':
                    domain.shutdown()
                elif action == 'reboot':
                    domain.reboot()
                elif action == 'nmi':
                    domain.injectNMI()
        except libvirt.libvirtError as exc:
            raise error.FishyError('Error changing power state at libvirt URI "%s": %s' % (self._uri, exc)) from exc

    def _power_on(self, domain: t.Any) -> None:
        domain.create()
        self._boot_started(domain, 'power-on')


class _RebootWatcher:
    """libvirt REBOOT events (a guest or host reset of a running domain) -> ``_boot_started`` in a worker thread.

    libvirt calls back in its event-loop thread; API calls from there can stall the loop that delivers their
    replies, so the callback only queues the domain's UUID.  The connection is reopened when it drops.
    """

    def __init__(self, uri: str, driver: LabLibvirtDriver, logger: t.Any) -> None:
        self.uri = uri
        self.driver = driver
        self.logger = logger
        self.pending: queue.Queue[str] = queue.Queue()

    def start(self) -> None:
        threading.Thread(target=self._listen, name='l3m-reboot-events', daemon=True).start()
        threading.Thread(target=self._work, name='l3m-reboot-worker', daemon=True).start()

    def _on_reboot(self, _conn: t.Any, domain: t.Any, _opaque: t.Any) -> None:
        self.pending.put(domain.UUIDString())

    def _listen(self) -> None:
        while True:
            closed = threading.Event()
            try:
                conn = libvirt.open(self.uri)
                conn.setKeepAlive(5, 3)
                conn.registerCloseCallback(lambda *_args, done=closed: done.set(), None)
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None)
                closed.wait()
            except libvirt.libvirtError as exc:
                self.logger.warning('libvirt event connection to %s: %s; retrying', self.uri, exc)
            time.sleep(1)

    def _work(self) -> None:
        while True:
            uuid = self.pending.get()
            try:
                with libvirtdriver.libvirt_open(self.uri) as conn:
                    self.driver._boot_started(conn.lookupByUUIDString(uuid), 'guest reset')
            except Exception as exc:  # pylint: disable=broad-exception-caught  # keep the worker alive
                self.logger.warning('reset of %s: could not update the boot override: %s', uuid, exc)


def _wait(condition: t.Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise error.FishyError('%s: not within %g s' % (what, timeout))
        time.sleep(0.1)


# -- Flask hooks ---------------------------------------------------------------------------------------

def _systems() -> LabLibvirtDriver:
    return t.cast(LabLibvirtDriver, flask.current_app.systems)  # type: ignore[attr-defined]


def _boot_patch() -> tuple[str, int] | None:
    """PATCH /Systems/<id> with ``Boot``: handled here (sushy-tools would drop BootSourceOverrideEnabled)."""
    request = flask.request
    match = _SYSTEM_PATH.match(request.path)
    if request.method != 'PATCH' or not match:
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or 'Boot' not in body:
        return None
    identity = match['identity']
    if api_utils.instance_denied(identity=identity):
        raise error.NotFound()
    systems = _systems()
    systems.uuid(identity)  # NotFound, or a redirect from a name to the UUID
    target, enabled, mode = parse_boot_patch(body)
    if mode is not None:
        systems.set_boot_mode(identity, mode)
    if target is not None or enabled is not None:
        systems.set_boot_override(identity, target, enabled)
    return '', 204


def _rewrite_system(response: flask.Response) -> flask.Response:
    """GET /Systems/<id>: report the stored override, the real allowed targets and reset types."""
    request = flask.request
    match = _SYSTEM_PATH.match(request.path)
    if request.method != 'GET' or not match or response.status_code != 200:
        return response
    systems = _systems()
    identity = match['identity']
    data = rewrite_system(json.loads(response.get_data()), systems.get_boot_override(identity), systems.allowed_targets(identity),
                          systems.get_boot_mode(identity), systems.smbios_serial(identity))
    response.set_data(json.dumps(data, indent=4))
    return response


def install(app: flask.Flask) -> None:
    app.before_request(_boot_patch)
    app.after_request(_rewrite_system)


def main() -> int:
    libvirt.virEventRegisterDefaultImpl()  # before any connection: keepalive and the REBOOT events need it
    # libvirt's default handler prints every error to stderr, also those the code handles (sushy-tools looks up each
    # disk as a storage volume on every GET of a system: "Storage volume not found"); errors still raise libvirtError.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    def loop() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=loop, name='libvirt-event-loop', daemon=True).start()
    libvirtdriver.LibvirtDriver = LabLibvirtDriver  # what Application.systems instantiates
    install(emulator.app)
    emulator.app.logger.setLevel(logging.INFO)
    config = next((sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == '--config'), None) or os.environ.get('SUSHY_EMULATOR_CONFIG')
    if config:
        emulator.app.configure(config_file=config)
        systems = emulator.app.systems  # initialise now: the REBOOT watcher starts before the first request
        del systems
    return int(emulator.main() or 0)


if __name__ == '__main__':
    sys.exit(main())
