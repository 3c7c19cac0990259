# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Boot override, reset and power state.

The override is read back after every change and compared with what was asked; where the BMC keeps the
writable copy of ``Boot`` in its ``@Redfish.Settings`` object (iDRAC10), the pending values are read
from there and reported as pending until the next reset.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing as t

from . import quirks as q
from .connection import Resource, RedfishClient
from .errors import RedfishError, RedfishHTTPError, RedfishTimeoutError, RedfishUnsupportedError, RedfishVerifyError

BOOT_TARGETS: dict[str, str] = {'cd': 'Cd', 'usb': 'Usb', 'hdd': 'Hdd', 'pxe': 'Pxe', 'none': 'None'}
BOOT_MODES: dict[str, str] = {'uefi': 'UEFI', 'legacy': 'Legacy'}
RESET_TYPES = ('On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi',
               'PushPowerButton')
POWER_ON_TYPES = frozenset(['On', 'ForceOn'])
POWER_OFF_TYPES = frozenset(['ForceOff', 'GracefulShutdown'])
RESTART_TYPES = frozenset(['GracefulRestart', 'ForceRestart', 'PowerCycle'])
POWER_STATES = ('On', 'Off')
# A virtual optical drive in a BootOption's name (iDRAC: "Virtual Optical Drive", others: "Virtual CD/DVD").
_VIRTUAL_CD = re.compile(r'virtual\s*(optical|cd|dvd)|vcd|virtual\s*media', re.IGNORECASE)
_OVERRIDE_KEYS = ('BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode', 'BootNext',
                  'UefiTargetBootSourceOverride')


@dataclasses.dataclass
class BootOverride:
    target: str | None
    enabled: str | None
    mode: str | None
    boot_next: str | None
    uefi_target: str | None
    pending: bool
    source: str
    allowed_targets: list[str]

    @classmethod
    def from_boot(cls, boot: t.Mapping[str, t.Any], source: str, pending: bool, allowed: list[str]) -> BootOverride:
        return cls(target=boot.get('BootSourceOverrideTarget'), enabled=boot.get('BootSourceOverrideEnabled'),
                   mode=boot.get('BootSourceOverrideMode'), boot_next=boot.get('BootNext') or None,
                   uefi_target=boot.get('UefiTargetBootSourceOverride') or None, pending=pending, source=source,
                   allowed_targets=allowed)

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)

    def value(self, key: str) -> t.Any:
        return {'BootSourceOverrideTarget': self.target, 'BootSourceOverrideEnabled': self.enabled,
                'BootSourceOverrideMode': self.mode, 'BootNext': self.boot_next,
                'UefiTargetBootSourceOverride': self.uefi_target}.get(key)


@dataclasses.dataclass
class BootPlan:
    payload: dict[str, t.Any]
    path: str
    via: str
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ResetResult:
    requested: str
    sent: str | None
    skipped: str | None
    power_state_before: str | None

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


class BootManager:
    def __init__(self, client: RedfishClient, check_mode: bool = False, wait_timeout: float = 300,
                 sleep: t.Callable[[float], None] | None = None) -> None:
        self.client = client
        self.check_mode = check_mode
        self.wait_timeout = float(wait_timeout)
        self.sleep = sleep or client.policy.sleep
        self.warnings: list[str] = []
        self._settings_etag: str | None = None

    # -- reading ---------------------------------------------------------------------------------

    @property
    def system(self) -> Resource:
        return self.client.system()

    def _settings_path(self) -> str | None:
        settings = self.system.json.get('@Redfish.Settings') or {}
        path = (settings.get('SettingsObject') or {}).get('@odata.id')
        return str(path) if path else None

    def _settings_boot(self) -> dict[str, t.Any] | None:
        """The Boot object of the @Redfish.Settings resource when it carries override properties."""
        path = self._settings_path()
        if not path:
            return None
        settings = self.client.read(path)
        self._settings_etag = settings.etag
        boot = settings.json.get('Boot') or {}
        return boot if any(key in boot for key in _OVERRIDE_KEYS) else None

    def _etag(self, path: str) -> str | None:
        if path == self.system.path:
            return self.system.etag
        return self._settings_etag if path == self._settings_path() else None

    def read_override(self) -> BootOverride:
        main = self.system.json.get('Boot') or {}
        settings = self._settings_boot()
        allowed = list(main.get('BootSourceOverrideTarget@Redfish.AllowableValues')
                       or (settings or {}).get('BootSourceOverrideTarget@Redfish.AllowableValues') or [])
        current = BootOverride.from_boot(main, self.system.path, False, allowed)
        if settings:
            pending = BootOverride.from_boot(settings, self._settings_path() or '', True, allowed)
            if any(pending.value(k) is not None and pending.value(k) != current.value(k) for k in _OVERRIDE_KEYS):
                return pending
        return current

    def refresh(self) -> None:
        self.client.refresh_system()

    @property
    def power_state(self) -> str | None:
        return self.system.json.get('PowerState')

    # -- override --------------------------------------------------------------------------------

    def _virtual_cd_option(self) -> dict[str, t.Any] | None:
        link = ((self.system.json.get('Boot') or {}).get('BootOptions') or {}).get('@odata.id')
        if not link:
            return None
        collection, _headers = self.client.get_json(link)
        for member in collection.get('Members') or []:
            body = member if isinstance(member, dict) and 'DisplayName' in member else None
            if body is None and isinstance(member, dict) and member.get('@odata.id'):
                body, _headers = self.client.get_json(member['@odata.id'])
            if body and body.get('BootOptionEnabled', True) is not False and any(
                    _VIRTUAL_CD.search(str(body.get(key) or '')) for key in ('DisplayName', 'Name', 'Alias', 'Description')):
                return body
        return None

    def plan(self, target: str, once: bool, mode: str | None, current: BootOverride) -> BootPlan:
        active = self.client.quirks()
        settings_path = self._settings_path()
        use_settings = bool(settings_path) and (active.has(q.BOOT_VIA_SETTINGS_RESOURCE) or current.pending)
        path = settings_path if use_settings and settings_path else self.system.path
        plan = BootPlan({}, path, 'settings' if use_settings else 'system')
        payload = plan.payload
        redfish_mode = BOOT_MODES[mode] if mode else None
        if target == 'none':
            payload['BootSourceOverrideEnabled'] = 'Disabled'
            if active.has(q.OVERRIDE_ENABLED_NOT_STORED):
                payload['BootSourceOverrideTarget'] = 'None'  # Disabled alone would not be kept
            if active.has(q.BOOT_PATCH_FULL_OBJECT):
                payload['BootSourceOverrideTarget'] = current.target or 'None'
                payload['BootSourceOverrideMode'] = redfish_mode or current.mode or 'UEFI'
            return plan
        redfish_target = BOOT_TARGETS[target]
        enabled = 'Once' if once else 'Continuous'
        allowed = current.allowed_targets
        if target == 'cd' and active.has(q.CD_BOOT_AS_USB_CD) and 'UsbCd' in allowed:
            redfish_target = 'UsbCd'
            plan.notes.append('boot target Cd sent as UsbCd (quirks table: supermicro-usb-cd)')
        if target == 'cd' and active.has(q.CD_BOOT_VIA_BOOT_OPTION) and (redfish_mode or current.mode or 'UEFI') == 'UEFI':
            option = self._virtual_cd_option()
            if option is None:
                plan.notes.append('no BootOption for a virtual optical drive is listed; using BootSourceOverrideTarget Cd')
            elif 'UefiBootNext' in allowed and option.get('BootOptionReference') and once:
                redfish_target = 'UefiBootNext'
                payload['BootNext'] = option['BootOptionReference']
            elif 'UefiTarget' in allowed and option.get('UefiDevicePath') and once:
                redfish_target = 'UefiTarget'
                payload['UefiTargetBootSourceOverride'] = option['UefiDevicePath']
            elif not once:
                plan.notes.append('a continuous override cannot use the UEFI device path of the virtual CD; using Cd')
            if option is not None and redfish_target in ('UefiBootNext', 'UefiTarget'):
                plan.notes.append('virtual CD booted through BootOption %s (%s) (quirks table: dell-cd-boot-physical-drive)'
                                  % (option.get('Id') or option.get('BootOptionReference'), option.get('DisplayName')))
        if allowed and redfish_target not in allowed:
            raise RedfishUnsupportedError('boot_target %s (%s) is not offered by the BMC at %s; it allows: %s'
                                          % (target, redfish_target, self.client.base_url, ', '.join(allowed)), bmc=self.client.base_url)
        payload['BootSourceOverrideTarget'] = redfish_target
        payload['BootSourceOverrideEnabled'] = enabled
        if redfish_mode:
            payload['BootSourceOverrideMode'] = redfish_mode
        elif active.has(q.BOOT_PATCH_FULL_OBJECT):
            payload['BootSourceOverrideMode'] = current.mode or 'UEFI'
        return plan

    def satisfied(self, plan: BootPlan, current: BootOverride) -> bool:
        """Whether the BMC already holds what ``plan`` would send."""
        payload = plan.payload
        if payload.get('BootSourceOverrideEnabled') == 'Disabled':
            return current.enabled == 'Disabled' or current.target in (None, 'None')
        for key, wanted in payload.items():
            if key == 'BootSourceOverrideEnabled' and self.client.quirks().has(q.OVERRIDE_ENABLED_NOT_STORED):
                continue
            if current.value(key) != wanted:
                return False
        return True

    def apply(self, plan: BootPlan) -> None:
        """PATCH the override; retried during POST where the quirks table says so."""
        retry_post = self.client.quirks().has(q.RETRY_BOOT_PATCH_DURING_POST)
        deadline = time.monotonic() + self.wait_timeout
        etag = self._etag(plan.path)  # of the read the plan was made on; a refused PATCH changes nothing
        attempt = 0
        while True:
            try:
                self.client.patch(plan.path, {'Boot': plan.payload}, etag=etag)
                return
            except RedfishHTTPError as exc:
                in_post = error_is_in_post(exc)
                if not (retry_post and in_post) or time.monotonic() >= deadline:
                    if in_post:
                        exc.notes.append('the server is in POST; retry once it has booted or is powered off')
                    raise
            self.sleep(min(self.client.policy.delay(attempt), max(0.0, deadline - time.monotonic())))
            attempt += 1

    def verify(self, plan: BootPlan, after: BootOverride) -> None:
        """Compare the read-back override with what was sent: a wrong target fails, a wrong frequency warns."""
        payload = plan.payload
        if payload.get('BootSourceOverrideEnabled') == 'Disabled':
            if after.enabled not in ('Disabled', None) and after.target not in (None, 'None'):
                raise RedfishVerifyError('the BMC accepted disabling the boot override but reports %s/%s'
                                         % (after.target, after.enabled), bmc=self.client.base_url, method='GET', url=after.source)
            return
        for key in ('BootSourceOverrideTarget', 'BootNext', 'UefiTargetBootSourceOverride'):
            if key in payload and after.value(key) != payload[key]:
                raise RedfishVerifyError('the BMC accepted %s=%s but reports %r when read back'
                                         % (key, payload[key], after.value(key)), bmc=self.client.base_url, method='GET', url=after.source)
        wanted = payload.get('BootSourceOverrideEnabled')
        if wanted and after.enabled != wanted:
            known = self.client.quirks().has(q.OVERRIDE_ENABLED_NOT_STORED)
            self.warnings.append('the BMC reports BootSourceOverrideEnabled=%s although %s was sent%s'
                                 % (after.enabled, wanted, ' (known behaviour, quirks table)' if known else
                                    '; the override may stay in place after the next boot (boot_target: none clears it)'))

    # -- power -----------------------------------------------------------------------------------

    def reset(self, reset_type: str) -> ResetResult:
        power = self.power_state
        sent: str | None = reset_type
        skipped = None
        if reset_type in POWER_ON_TYPES and power == 'On':
            sent, skipped = None, 'the system is already On'
        elif reset_type in POWER_OFF_TYPES and power == 'Off':
            sent, skipped = None, 'the system is already Off'
        elif reset_type in RESTART_TYPES and power == 'Off':
            sent = 'On'  # restarting a powered-off server means powering it on; many BMCs reject a restart when off
        result = ResetResult(reset_type, sent, skipped, power)
        if sent:
            target = self.system.action_target('ComputerSystem.Reset')
            if target is None:
                raise RedfishUnsupportedError('system %s on %s offers no ComputerSystem.Reset action' % (self.system.identity, self.client.base_url),
                                              bmc=self.client.base_url)
            action = (self.system.json.get('Actions') or {}).get('#ComputerSystem.Reset') or {}
            # no AllowableValues annotation: the BMC does not restrict the reset types (as sushy reads it)
            allowed = sorted(action.get('ResetType@Redfish.AllowableValues') or RESET_TYPES)
            if sent not in allowed:
                raise RedfishUnsupportedError('reset_type %s%s is not offered by system %s on %s; it allows: %s'
                                              % (sent, '' if sent == reset_type else ' (sent for %s while the system is Off)' % reset_type,
                                                 self.system.identity, self.client.base_url, ', '.join(allowed)), bmc=self.client.base_url)
            if not self.check_mode:
                self.client.post(target, {'ResetType': sent})
        return result

    def wait_power(self, wanted: str, timeout: float | None = None) -> float:
        """Poll PowerState until it is ``wanted``; return the seconds waited, raise RedfishTimeoutError at the deadline."""
        timeout = self.wait_timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + timeout
        interval = 0.5
        while True:
            self.refresh()
            if self.power_state == wanted:
                return round(time.monotonic() - start, 1)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RedfishTimeoutError('system %s on %s is still %s after %g s; wanted %s (raise wait_timeout if the server is slow)'
                                          % (self.system.identity, self.client.base_url, self.power_state, timeout, wanted),
                                          bmc=self.client.base_url)
            self.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 5.0)


def expected_power(reset_type: str) -> str | None:
    if reset_type in POWER_OFF_TYPES:
        return 'Off'
    if reset_type in POWER_ON_TYPES or reset_type in RESTART_TYPES:
        return 'On'
    return None


def error_is_in_post(exc: RedfishError) -> bool:
    return any(i.endswith('UnableToModifyDuringSystemPOST') for i in exc.message_ids())
