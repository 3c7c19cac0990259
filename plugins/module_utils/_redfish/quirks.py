# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The quirks table: vendor/model behaviours that differ from the Redfish specification.

One entry per behaviour, each with a one-line reason.  An entry matches a ComputerSystem by its
``Manufacturer`` and ``Model`` (regular expressions, case-insensitive, searched) and, when
``requires`` is set, by a property the system resource must carry.  The code asks for *effects*
(``ActiveQuirks.has(EFFECT)``), never for vendor names, so a new BMC family is one new row.

Behaviour handled the same way for every vendor (an EjectMedia sent with an empty JSON object, which
iLO needs; ``TransferProtocolType`` added when a BMC asks for it; a 412 answered by a PATCH with the fresh
ETag, read from the refusal or by reading again; an override not kept sent again without the mode) is
not repeated here; docs/redfish.md lists it with what each retry costs in requests.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

# Effects: what the code does differently when an entry applies.
TRANSIENT_ERRORS = 'transient_errors'  # arg: MessageId pattern of 5xx answers to writes that may be repeated
STALE_IMAGE_WHEN_EMPTY = 'stale_image_when_empty'
INSERT_IMAGE_ONLY_ON_REFUSAL = 'insert_image_only_on_refusal'  # arg: pattern of the refusal's message
REPEAT_EJECT_UNTIL_VERIFIED = 'repeat_eject_until_verified'
CD_BOOT_VIA_BOOT_OPTION = 'cd_boot_via_boot_option'
RETRY_BOOT_PATCH_DURING_POST = 'retry_boot_patch_during_post'
TASK_MEDIUM_ON_REMOVABLE = 'task_medium_on_removable'
SKIP_SLOTS = 'skip_slots'
PATCH_MOUNT_SLOTS = 'patch_mount_slots'
BOOT_PATCH_FULL_OBJECT = 'boot_patch_full_object'
CD_BOOT_AS_USB_CD = 'cd_boot_as_usb_cd'
BOOT_VIA_SETTINGS_RESOURCE = 'boot_via_settings_resource'
OVERRIDE_ENABLED_NOT_STORED = 'override_enabled_not_stored'

EFFECTS = frozenset([
    TRANSIENT_ERRORS, STALE_IMAGE_WHEN_EMPTY, INSERT_IMAGE_ONLY_ON_REFUSAL, REPEAT_EJECT_UNTIL_VERIFIED, CD_BOOT_VIA_BOOT_OPTION, RETRY_BOOT_PATCH_DURING_POST,
    TASK_MEDIUM_ON_REMOVABLE, SKIP_SLOTS, PATCH_MOUNT_SLOTS, BOOT_PATCH_FULL_OBJECT, CD_BOOT_AS_USB_CD,
    BOOT_VIA_SETTINGS_RESOURCE, OVERRIDE_ENABLED_NOT_STORED,
])


@dataclasses.dataclass(frozen=True)
class Quirk:
    key: str
    manufacturer: str
    effect: str
    reason: str
    model: str = ''
    requires: str = ''
    arg: str = ''

    def matches(self, manufacturer: str, model: str, system_json: t.Mapping[str, t.Any]) -> bool:
        if not re.search(self.manufacturer, manufacturer or '', re.IGNORECASE):
            return False
        if self.model and not re.search(self.model, model or '', re.IGNORECASE):
            return False
        return not self.requires or self.requires in system_json

    def as_dict(self) -> dict[str, str]:
        return {'key': self.key, 'effect': self.effect, 'reason': self.reason}


DELL = r'^dell'
HPE = r'^(hpe|hp)\b'
LENOVO = r'^lenovo'
SUPERMICRO = r'^supermicro'

QUIRKS: tuple[Quirk, ...] = (
    Quirk('dell-sys446-transient', DELL, TRANSIENT_ERRORS, arg=r'\.SYS446$',
          reason='iDRAC answers 500 SYS446 while a media operation settles: retried; other 500s (VRM0021, medium connected) are not.'),
    Quirk('dell-eject-not-effective', DELL, REPEAT_EJECT_UNTIL_VERIFIED,
          'iDRAC can answer EjectMedia with 204 and keep the image inserted; the slot is re-read and the eject repeated until it is empty.'),
    Quirk('dell-cd-boot-physical-drive', DELL, CD_BOOT_VIA_BOOT_OPTION,
          'a one-time boot to Cd may start a physical drive; in UEFI mode the BootOption listed for the virtual optical drive is used.'),
    Quirk('dell-idrac10-boot-settings', DELL, BOOT_VIA_SETTINGS_RESOURCE, requires='@Redfish.Settings',
          reason='iDRAC10 refuses Boot on the system (PropertyNotWritable); the override goes to @Redfish.Settings, pending until reset.'),
    Quirk('hpe-boot-during-post', HPE, RETRY_BOOT_PATCH_DURING_POST,
          'iLO rejects a boot override with 400 UnableToModifyDuringSystemPOST while the server is in POST; retried until wait_timeout.'),
    Quirk('hpe-slot-map', HPE, TASK_MEDIUM_ON_REMOVABLE,
          'iLO has one CD/DVD and one Floppy/USBStick slot: boot media goes on the CD, the task medium on the removable slot as FAT.'),
    Quirk('lenovo-upload-only-slots', LENOVO, SKIP_SLOTS, arg=r'^(RDOC|Remote)\d*$',
          reason='XCC lists RDOC and Remote slots that take only uploads or console mounts, not a URL: they are never chosen.'),
    Quirk('lenovo-patch-mount', LENOVO, PATCH_MOUNT_SLOTS, arg=r'^EXT\d*$',
          reason='XCC EXT slots have no InsertMedia; they mount by PATCH of Image/Inserted with If-Match (a 412 gets the fresh ETag).'),
    Quirk('supermicro-stale-image', SUPERMICRO, STALE_IMAGE_WHEN_EMPTY,
          'Supermicro keeps Image/ImageName in an ejected slot; the slot is empty when Inserted is false or ConnectedVia NotConnected.'),
    Quirk('supermicro-insert-image-only', SUPERMICRO, INSERT_IMAGE_ONLY_ON_REFUSAL, arg=r'not in the list of valid properties|invalid parameter',
          reason='Supermicro refuses Inserted/WriteProtected in InsertMedia; it is sent again with Image only, the BMC defaults apply.'),
    Quirk('supermicro-full-boot-object', SUPERMICRO, BOOT_PATCH_FULL_OBJECT,
          'Supermicro rejects a Boot PATCH without BootSourceOverrideEnabled, Target and Mode; the full Boot object is sent.'),
    Quirk('supermicro-usb-cd', SUPERMICRO, CD_BOOT_AS_USB_CD,
          'Supermicro presents virtual media as a USB CD: boot target cd is sent as UsbCd when the BMC lists it.'),
    # The lab's VM BMC (sushy-tools + lab/l3metal_lab/sushy_libvirt_adapter.py) keeps Once and reports a Model: not matched.
    Quirk('sushy-emulator-override-enabled', r'^sushy emulator', OVERRIDE_ENABLED_NOT_STORED, model=r'^$',
          reason='stock sushy-tools (no Model) ignores BootSourceOverrideEnabled, always reports Continuous; only the target is compared.'),
)


class ActiveQuirks:
    """The entries of the table that apply to one system."""

    def __init__(self, entries: t.Iterable[Quirk]) -> None:
        self.entries = tuple(entries)

    @classmethod
    def for_system(cls, manufacturer: str | None, model: str | None, system_json: t.Mapping[str, t.Any] | None = None,
                   table: t.Sequence[Quirk] = QUIRKS) -> ActiveQuirks:
        return cls(q for q in table if q.matches(manufacturer or '', model or '', system_json or {}))

    def has(self, effect: str) -> bool:
        return any(q.effect == effect for q in self.entries)

    def arg(self, effect: str) -> str | None:
        for quirk in self.entries:
            if quirk.effect == effect:
                return quirk.arg
        return None

    def matches(self, effect: str, text: str) -> bool:
        """True when an entry with ``effect`` applies and its pattern (``arg``) is found in ``text``."""
        return any(q.effect == effect and q.arg and re.search(q.arg, text) for q in self.entries)

    def slot_matches(self, effect: str, slot_id: str) -> bool:
        """True when an entry with ``effect`` applies and its slot-id pattern matches ``slot_id``."""
        return any(q.effect == effect and q.arg and re.search(q.arg, slot_id) for q in self.entries)

    def keys(self) -> list[str]:
        return [q.key for q in self.entries]

    def as_list(self) -> list[dict[str, str]]:
        return [q.as_dict() for q in self.entries]
