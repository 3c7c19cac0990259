# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Boot override, reset and power state.

The override is read back after every change and compared with what was asked, before any reset: a
target or a frequency the BMC did not keep fails the task (after one more PATCH without
``BootSourceOverrideMode``, which some BMCs only honour alone).  Where the BMC keeps the writable copy
of ``Boot`` in its ``@Redfish.Settings`` object (iDRAC10), the values there count as pending only when
the BMC says so (``@Redfish.SettingsApplyTime`` on the settings object, and no record in
``@Redfish.Settings`` that they were applied); values it already applied and kept are not pending.

``boot_target: cd`` boots the slot that holds the boot medium: ``boot_image_url`` when given, else the
first CD slot (``redfish_virtual_media_info``'s ``layout.boot``); where the BMC links its virtual-CD
boot options to slots (``RelatedItem``), the option of that slot is the one booted.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing as t

from . import quirks as q
from .connection import RedfishClient, Resource
from .errors import RedfishError, RedfishHTTPError, RedfishSelectionError, RedfishTimeoutError, RedfishUnsupportedError, RedfishVerifyError
from .vmedia import Slot, VirtualMediaManager

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
    apply_time: str | None = None  # @Redfish.SettingsApplyTime sent with a PATCH of the settings object
    mode_asked: bool = False  # BootSourceOverrideMode came from boot_mode, not from a quirk

    def body(self) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {'Boot': dict(self.payload)}
        if self.apply_time:
            body['@Redfish.SettingsApplyTime'] = {'ApplyTime': self.apply_time}
        return body


@dataclasses.dataclass
class ResetResult:
    requested: str
    sent: str | None
    skipped: str | None
    power_state_before: str | None

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def _related_slot(option: t.Mapping[str, t.Any]) -> str | None:
    """The VirtualMedia slot a BootOption names in ``RelatedItem``, None when it names none."""
    for link in option.get('RelatedItem') or []:
        path = str((link or {}).get('@odata.id') or '') if isinstance(link, dict) else ''
        if '/VirtualMedia/' in path:
            return path.rstrip('/')
    return None


class BootManager:
    def __init__(self, client: RedfishClient, check_mode: bool = False, wait_timeout: float = 300,
                 sleep: t.Callable[[float], None] | None = None) -> None:
        self.client = client
        self.check_mode = check_mode
        self.wait_timeout = float(wait_timeout)
        self.sleep = sleep or client.policy.sleep
        self.warnings: list[str] = []
        self._settings: Resource | None = None
        self.settings_state: str | None = None  # why the settings object's values are (not) pending, when it has any
        self.boot_medium: dict[str, t.Any] | None = None  # the slot boot_target cd boots, when it is known
        self._media: VirtualMediaManager | None = None

    # -- reading ---------------------------------------------------------------------------------

    @property
    def system(self) -> Resource:
        return self.client.system()

    def _settings_annotation(self) -> dict[str, t.Any]:
        return dict(self.system.json.get('@Redfish.Settings') or {})

    def _settings_path(self) -> str | None:
        path = (self._settings_annotation().get('SettingsObject') or {}).get('@odata.id')
        return str(path) if path else None

    def _settings_boot(self) -> dict[str, t.Any] | None:
        """The Boot object of the @Redfish.Settings resource when it carries override properties."""
        path = self._settings_path()
        if not path:
            return None
        self._settings = self.client.read(path)
        boot = self._settings.json.get('Boot') or {}
        return boot if any(key in boot for key in _OVERRIDE_KEYS) else None

    def _settings_pending(self) -> tuple[bool, str]:
        """Whether the BMC says the values in its settings object wait for a reset, and why.

        Only the BMC's own records count: ``@Redfish.SettingsApplyTime`` on the settings object (an application is
        scheduled) means pending; ``@Redfish.Settings`` recording the ETag of the settings object as applied, or a
        ``Time``/``Messages`` of the last application without a scheduled one, means what the object holds was applied
        (iDRAC10 keeps those values after the override was consumed at boot).  With no record either way nothing is
        taken as pending: the override is sent again, which on such a BMC costs one PATCH but never skips a boot.
        """
        settings = self._settings
        annotation = self._settings_annotation()
        if settings is not None and '@Redfish.SettingsApplyTime' in settings.json:
            apply_time = (settings.json.get('@Redfish.SettingsApplyTime') or {}).get('ApplyTime')
            return True, 'the settings object is scheduled to apply (@Redfish.SettingsApplyTime %s)' % (apply_time or 'set')
        if annotation.get('ETag') and settings is not None and annotation.get('ETag') == settings.etag:
            return False, 'the BMC records the settings object (ETag %s) as applied' % annotation['ETag']
        if annotation.get('Time') or annotation.get('Messages'):
            said = '; '.join(str(m.get('Message') or m.get('MessageId')) for m in annotation.get('Messages') or [] if isinstance(m, dict))
            when = annotation.get('Time') or 'its last reset'
            return False, 'the BMC applied the settings object at %s%s and schedules nothing' % (when, ' (%s)' % said if said else '')
        return False, 'the BMC marks nothing in the settings object as pending'

    def _etag(self, path: str) -> str | None:
        if path == self.system.path:
            return self.system.etag
        return self._settings.etag if self._settings is not None and path == self._settings_path() else None

    def read_override(self) -> BootOverride:
        main = self.system.json.get('Boot') or {}
        settings = self._settings_boot()
        allowed = list(main.get('BootSourceOverrideTarget@Redfish.AllowableValues')
                       or (settings or {}).get('BootSourceOverrideTarget@Redfish.AllowableValues') or [])
        current = BootOverride.from_boot(main, self.system.path, False, allowed)
        self.settings_state = None
        if settings:
            pending = BootOverride.from_boot(settings, self._settings_path() or '', True, allowed)
            if any(pending.value(k) is not None and pending.value(k) != current.value(k) for k in _OVERRIDE_KEYS):
                is_pending, self.settings_state = self._settings_pending()
                if is_pending:
                    return pending
        return current

    def refresh(self) -> None:
        self.client.refresh_system()

    @property
    def power_state(self) -> str | None:
        return self.system.json.get('PowerState')

    # -- the boot medium -------------------------------------------------------------------------

    def _virtual_cd_options(self) -> list[dict[str, t.Any]]:
        link = ((self.system.json.get('Boot') or {}).get('BootOptions') or {}).get('@odata.id')
        if not link:
            return []
        collection, _headers = self.client.get_json(link)
        options = []
        for member in collection.get('Members') or []:
            body = member if isinstance(member, dict) and 'DisplayName' in member else None
            if body is None and isinstance(member, dict) and member.get('@odata.id'):
                body, _headers = self.client.get_json(member['@odata.id'])
            if body and body.get('BootOptionEnabled', True) is not False and any(
                    _VIRTUAL_CD.search(str(body.get(key) or '')) for key in ('DisplayName', 'Name', 'Alias', 'Description')):
                options.append(body)
        return options

    def _boot_slot(self, boot_image_url: str | None) -> Slot | None:
        """The slot holding ``boot_image_url``, else the first mountable CD slot (the layout's boot slot)."""
        if self._media is None:
            self._media = VirtualMediaManager(self.client, check_mode=True)
        slots = [s for s in self._media.slots() if s.mountable]
        if boot_image_url:
            holding = [s for s in slots if s.occupied and s.image_matches(boot_image_url)]
            if not holding and self.check_mode:
                # In check mode the task that inserts the medium changed nothing either: predict with the slot it
                # would go to by default (the first CD slot) instead of failing on what a real run would have done.
                self.warnings.append('check mode: no slot holds boot_image_url %s yet; assuming the first CD slot' % boot_image_url)
                cds = [s for s in slots if s.accepts('cd')]
                return cds[0] if cds else None
            if not holding:
                raise RedfishSelectionError('boot_image_url: no virtual media slot holds boot_image_url %s on %s (slots: %s); insert it'
                                            ' first with l3metal.provision.redfish_virtual_media'
                                            % (boot_image_url, self.client.base_url,
                                               ', '.join('%s holds %s' % (s.id, s.image or s.image_name or 'nothing') for s in slots) or 'none'),
                                            bmc=self.client.base_url)
            return holding[0]
        cds = [s for s in slots if s.accepts('cd')]
        return cds[0] if cds else None

    def _option_for_slot(self, options: list[dict[str, t.Any]], boot_image_url: str | None) -> dict[str, t.Any] | None:
        """The virtual-CD BootOption that boots the boot medium's slot; fails (before any change) when none does."""
        linked = [o for o in options if _related_slot(o)]
        if not linked and not boot_image_url:
            return options[0] if options else None
        slot = self._boot_slot(boot_image_url)
        if slot is None:
            return options[0] if options else None
        for option in linked:
            if _related_slot(option) == slot.path.rstrip('/'):
                self.boot_medium = {'slot_id': slot.id, 'image': slot.image, 'boot_option': option.get('Id') or option.get('BootOptionReference')}
                return option
        if linked:
            offered = '; '.join('%s boots slot %s' % (o.get('Id') or o.get('BootOptionReference'), str(_related_slot(o)).rsplit('/', 1)[-1])
                                for o in linked)
            raise RedfishSelectionError('the boot medium %s is in slot %s, but no virtual-CD boot option of the BMC at %s boots that slot'
                                        ' (%s): put the boot medium in a slot the BMC boots; nothing was changed'
                                        % (slot.image or boot_image_url, slot.id, self.client.base_url, offered), bmc=self.client.base_url)
        first = self._boot_slot(None)
        if options and first is not None and slot.path != first.path:
            # iDRAC's one "Virtual Optical Drive" boots the first instance (dell/iDRAC-Redfish-Scripting #324)
            raise RedfishSelectionError('the boot medium %s is in slot %s, but the BMC at %s says not which slot its virtual-CD boot option %s'
                                        ' boots (no RelatedItem); it is taken to boot the first CD slot %s: put the boot medium there;'
                                        ' nothing was changed' % (slot.image or boot_image_url, slot.id, self.client.base_url,
                                                                  options[0].get('Id') or options[0].get('BootOptionReference'), first.id),
                                        bmc=self.client.base_url)
        self.boot_medium = {'slot_id': slot.id, 'image': slot.image, 'boot_option': options[0].get('Id') if options else None}
        return options[0] if options else None

    # -- override --------------------------------------------------------------------------------

    def plan(self, target: str, once: bool, mode: str | None, current: BootOverride, boot_image_url: str | None = None) -> BootPlan:
        active = self.client.quirks()
        settings_path = self._settings_path()
        use_settings = bool(settings_path) and (active.has(q.BOOT_VIA_SETTINGS_RESOURCE) or current.pending)
        path = settings_path if use_settings and settings_path else self.system.path
        plan = BootPlan({}, path, 'settings' if use_settings else 'system', mode_asked=bool(mode))
        if use_settings and 'OnReset' in (self._settings_annotation().get('SupportedApplyTimes') or []):
            plan.apply_time = 'OnReset'  # so that the BMC records the values as pending (see _settings_pending)
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
            option = self._option_for_slot(self._virtual_cd_options(), boot_image_url)
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
        elif target == 'cd' and boot_image_url:
            slot = self._boot_slot(boot_image_url)
            first = self._boot_slot(None)
            self.boot_medium = {'slot_id': slot.id if slot else None, 'image': boot_image_url, 'boot_option': None}
            if slot is not None and first is not None and slot.path != first.path:
                plan.notes.append('the BMC boots "the virtual CD" without naming a slot; boot_image_url is in slot %s, not in the first CD'
                                  ' slot %s' % (slot.id, first.id))
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

    def apply(self, plan: BootPlan) -> Resource | None:
        """PATCH the override (sent once more with a fresh ETag on a stale one, ``RedfishClient.patch_fresh``); retried during
        POST where the quirks table says so.  Returns the BMC's answer when it is the resource (see ``RedfishClient.patch``)."""
        retry_post = self.client.quirks().has(q.RETRY_BOOT_PATCH_DURING_POST)
        deadline = time.monotonic() + self.wait_timeout
        attempt = 0
        while True:
            read = self.system if plan.path == self.system.path else self._settings
            try:
                if read is None:  # the settings object was not read (it carries no override): nothing to compare against
                    return self.client.patch(plan.path, plan.body(), etag=self._etag(plan.path))
                return self.client.patch_fresh(read, plan.body(), lambda fresh: self._still_needed(plan, fresh))
            except RedfishHTTPError as exc:
                in_post = error_is_in_post(exc)
                if not (retry_post and in_post) or time.monotonic() >= deadline:
                    if in_post:
                        exc.notes.append('the server is in POST; retry once it has booted or is powered off')
                    raise
            self.sleep(min(self.client.policy.delay(attempt), max(0.0, deadline - time.monotonic())))
            attempt += 1

    def _still_needed(self, plan: BootPlan, fresh: Resource) -> bool:
        """After a 412: whether the system, as the fresh state shows it, still lacks the override.

        The fresh state decides only *whether* to PATCH, never *what*: the body is the plan, made from the read the
        task's decision was made on.  So when the 412 answer carries a fresh ETag but not the resource, the PATCH is sent
        again without reading the system (``RedfishClient.patch_fresh``): a read could only have shown that the system
        already holds the override, and sending the same override again leaves it as it is.  Correctness does not rest on
        this check either way: ``set_override`` reads the override back before any reset.
        """
        if fresh.path == self.system.path:
            return not self.satisfied(plan, BootOverride.from_boot(fresh.json.get('Boot') or {}, fresh.path, False, []))
        return True

    def mismatch(self, plan: BootPlan, after: BootOverride) -> str | None:
        """What the read-back override lacks of ``plan`` (None: it holds); a frequency the quirks table says is not stored is a warning."""
        payload = plan.payload
        if payload.get('BootSourceOverrideEnabled') == 'Disabled':
            if after.enabled not in ('Disabled', None) and after.target not in (None, 'None'):
                return 'reports %s/%s after disabling the override' % (after.target, after.enabled)
            return None
        wrong = [key for key in ('BootSourceOverrideTarget', 'BootNext', 'UefiTargetBootSourceOverride', 'BootSourceOverrideEnabled')
                 if key in payload and after.value(key) != payload[key]]
        if 'BootSourceOverrideEnabled' in wrong and self.client.quirks().has(q.OVERRIDE_ENABLED_NOT_STORED):
            wrong.remove('BootSourceOverrideEnabled')
            warning = ('the BMC reports BootSourceOverrideEnabled=%s although %s was sent (known behaviour, quirks table)'
                       % (after.enabled, payload['BootSourceOverrideEnabled']))
            if warning not in self.warnings:
                self.warnings.append(warning)
        if not wrong:
            return None
        return 'kept ' + ' '.join('%s=%s' % (key, after.value(key)) for key in payload)

    def verify(self, plan: BootPlan, after: BootOverride) -> None:
        """Raise when the read-back override does not hold what was sent."""
        problem = self.mismatch(plan, after)
        if problem:
            raise RedfishVerifyError('the BMC at %s answered success to PATCH %s %s but %s' % (self.client.base_url, plan.path, plan.payload, problem),
                                     bmc=self.client.base_url, method='GET', url=after.source)

    def set_override(self, plan: BootPlan) -> BootOverride:
        """Send the override and read it back; one more PATCH without BootSourceOverrideMode when the BMC did not keep it.

        Some BMCs answer 200 to an override with a mode and keep it disabled (issue 14: {UsbCd, Once, UEFI} kept as
        {UsbCd, Disabled}).  A target or frequency not kept after that fails here, before any reset is sent.

        Requests: the override alone is PATCH + read-back.  The retry without the mode adds **one** request (its PATCH)
        when the BMC answers the first PATCH with the resource (200 and the resource as body) and that answer already shows
        the override not kept: the answer stands in for the first read-back, whose only use would be to find out that the
        override failed.  The read-back that lets a reset go ahead is always a GET: an answer showing the override kept
        is never taken for one (a BMC that keeps something else than it answers is what this check is for).
        On a BMC that answers 204 (or 200 with messages only, or the resource with no ETag where the system has one)
        the retry costs **two** requests, and cannot cost fewer without dropping a read-back before the reset: the answer
        to the first PATCH says nothing of what was kept, so only a GET shows the downgrade; the PATCH without the mode
        changes the override again, and with no answer that shows it, only a second GET shows whether it held.  Where the
        override goes to a settings object (iDRAC10) the read-back needs the system and the settings object, and the
        answer is the settings object alone: two as well.
        """
        answer = self.apply(plan)
        after = self._refused_in_answer(plan, answer)
        read_by = 'PATCH'  # the method whose answer showed the override
        if after is None:
            read_by = 'GET'
            self.refresh()
            after = self.read_override()
        problem = self.mismatch(plan, after)
        if problem is None:
            return after
        first = 'the BMC at %s answered success to PATCH %s %s but %s' % (self.client.base_url, plan.path, plan.payload, problem)
        sent_mode = plan.payload.get('BootSourceOverrideMode')
        if sent_mode is None or (plan.mode_asked and after.mode != sent_mode):
            raise RedfishVerifyError(first + '; no reset was sent', bmc=self.client.base_url, method=read_by, url=after.source)
        retry = dataclasses.replace(plan, payload={k: v for k, v in plan.payload.items() if k != 'BootSourceOverrideMode'}, notes=[])
        try:
            self.apply(retry)
        except RedfishHTTPError as exc:
            raise RedfishVerifyError('%s; sent again without BootSourceOverrideMode, it was refused: %s; no reset was sent' % (first, exc),
                                     bmc=self.client.base_url, method=exc.method, url=exc.url, status=exc.status,
                                     bmc_messages=exc.bmc_messages) from None
        self.refresh()  # the read-back before the reset: always a GET
        after = self.read_override()
        problem = self.mismatch(retry, after)
        if problem is not None:
            raise RedfishVerifyError('%s; sent again without BootSourceOverrideMode it %s; no reset was sent' % (first, problem),
                                     bmc=self.client.base_url, method='GET', url=after.source)
        plan.notes.append('the BMC did not keep the override sent with BootSourceOverrideMode=%s (%s); it was sent again without'
                          ' BootSourceOverrideMode and kept' % (sent_mode, problem))
        return after

    def _refused_in_answer(self, plan: BootPlan, answer: Resource | None) -> BootOverride | None:
        """The override as the BMC's answer to the PATCH shows it, when that answer is the system and shows the override
        *not* kept; None when a GET must read it back: no such answer, the override goes elsewhere
        than the system or the system has a settings object (pending is decided from both), the answer shows the override
        kept, or it lacks the ETag the next PATCH would need (the GET serves it)."""
        if answer is None or plan.path != self.system.path or answer.path != self.system.path or self._settings_path():
            return None
        boot = answer.json.get('Boot') or {}
        if not any(key in boot for key in _OVERRIDE_KEYS):
            return None
        allowed = boot.get('BootSourceOverrideTarget@Redfish.AllowableValues') or (self.system.json.get('Boot') or {}).get(
            'BootSourceOverrideTarget@Redfish.AllowableValues') or []
        shown = BootOverride.from_boot(boot, answer.path, False, list(allowed))
        if self._shows_kept(plan, shown) or (answer.etag is None and self.system.etag is not None):
            return None
        self.client.remember_system(answer)  # what the BMC says the system is now: the ETag of the PATCH without the mode
        return shown

    def _shows_kept(self, plan: BootPlan, shown: BootOverride) -> bool:
        warnings = list(self.warnings)
        kept = self.mismatch(plan, shown) is None
        self.warnings[:] = warnings  # the GET read-back that follows warns, if there is anything to warn about
        return kept

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


def run_boot(boot: BootManager, boot_target: str | None, boot_once: bool, boot_mode: str | None, boot_image_url: str | None,
             reset_type: str | None, wait_power_state: str | None, diff: bool = False) -> dict[str, t.Any]:
    """What ``redfish_boot`` does: the override (sent only when the BMC does not hold it, read back before any reset),
    then the reset, then the wait.  Returns the module result (without the common keys run_redfish adds)."""
    before = boot.read_override()
    before_state = boot.settings_state
    power_before = boot.power_state
    after = before
    changed = False
    request = None
    notes: list[str] = []
    if boot_target:
        plan = boot.plan(boot_target, boot_once, boot_mode, before, boot_image_url)
        notes = plan.notes
        if not boot.satisfied(plan, before):
            changed = True
            request = dict(path=plan.path, body=plan.body())
            if boot.check_mode:
                keys = {'BootSourceOverrideTarget': 'target', 'BootSourceOverrideEnabled': 'enabled', 'BootSourceOverrideMode': 'mode',
                        'BootNext': 'boot_next', 'UefiTargetBootSourceOverride': 'uefi_target'}
                after = dataclasses.replace(before, **{keys[k]: v for k, v in plan.payload.items() if k in keys})
            else:
                after = boot.set_override(plan)
    if before_state:
        notes.append('settings object: %s' % before_state)
    result: dict[str, t.Any] = dict(boot_override_before=before.as_dict(), boot_override=after.as_dict(), boot_request=request, notes=notes,
                                    boot_medium=boot.boot_medium)
    reset_sent = False
    if reset_type:
        reset = boot.reset(reset_type)
        reset_sent = reset.sent is not None
        changed = changed or reset_sent
        result['reset'] = reset.as_dict()
    waited = None
    if wait_power_state and not boot.check_mode:
        waited = boot.wait_power(wait_power_state)
    elif reset_sent and not boot.check_mode:
        boot.refresh()
    result.update(changed=changed, power_state=boot.power_state, waited=waited)
    if diff:
        reset_info = result.get('reset') or {}
        power_after = result['power_state']
        if boot.check_mode and reset_info.get('sent'):
            power_after = 'Off' if reset_info['sent'] in POWER_OFF_TYPES else 'On'
        result['diff'] = dict(
            before=dict(boot_override=_diffable(before.as_dict()), power_state=power_before),
            after=dict(boot_override=_diffable(after.as_dict()), power_state=power_after),
        )
    return result


def _diffable(override: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in override.items() if k != 'allowed_targets'}
