# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Virtual media: find the slots, pick one, insert and eject with verification.

Slots are found under ``Systems/<id>/VirtualMedia`` and, when the system has none, under the
``VirtualMedia`` of its manager (``manager_id`` picks the manager explicitly).  A slot is *mountable*
when it has an InsertMedia action or takes PATCH mounting; the others are listed but never chosen.
Slots are ordered by the natural order of their ``Id`` (numbers compared as numbers, case ignored:
``1 < 2 < 10``, ``CD1 < Cd2 < CD10``), never by the order the BMC lists them in (iDRAC10 lists
``VirtualMedia/2`` first).  ``slot`` numbers count only mountable slots that accept the media type, in
that order, starting at 1.

Every change is read back: a slot is re-read after each insert or eject, and the module fails when the
BMC answered success but the slot does not show the wanted state.  Replacing an image ejects the old
one first (most BMCs refuse an insert into an occupied slot); if the new image then cannot be inserted,
the old one is put back before the error is reported.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import time
import typing as t
import urllib.parse

from . import quirks as q
from .connection import RedfishClient, Resource
from .errors import RedfishError, RedfishHTTPError, RedfishSelectionError, RedfishUnsupportedError, RedfishVerifyError

MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    'cd': ('CD', 'DVD'),
    'usb': ('USBStick', 'Floppy'),
}
TRANSFER_PROTOCOLS = ('CIFS', 'FTP', 'SFTP', 'HTTP', 'HTTPS', 'NFS', 'SCP', 'TFTP', 'OEM')
INSERT_ACTION = 'VirtualMedia.InsertMedia'
EJECT_ACTION = 'VirtualMedia.EjectMedia'


def image_basename(url: str) -> str:
    return posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def natural_key(slot_id: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a slot Id: digit runs compare as numbers, the rest case-insensitively; numbers sort before letters."""
    return tuple((0, int(part), '') if part.isdigit() else (1, 0, part.lower()) for part in re.findall(r'\d+|\D+', slot_id))


@dataclasses.dataclass
class Slot:
    id: str
    path: str
    name: str | None
    media_types: list[str]
    inserted: bool | None
    image: str | None
    image_name: str | None
    write_protected: bool | None
    connected_via: str | None
    mount_method: str | None
    not_mountable_reason: str | None
    resource: Resource = dataclasses.field(default_factory=lambda: Resource('', {}), repr=False, compare=False)

    @classmethod
    def from_resource(cls, resource: Resource, active: q.ActiveQuirks) -> Slot:
        body = resource.json
        slot_id = resource.identity
        media_types = [str(m) for m in body.get('MediaTypes') or []]
        reason = None
        method = None
        if active.slot_matches(q.SKIP_SLOTS, slot_id):
            reason = 'the BMC takes only uploads or console mounts on this slot (quirks table)'
        elif resource.action_target(INSERT_ACTION):
            method = 'action'
        elif active.slot_matches(q.PATCH_MOUNT_SLOTS, slot_id) or resource.allows('PATCH'):
            method = 'patch'
        else:
            reason = 'no InsertMedia action and no PATCH mounting'
        image = body.get('Image') or None
        image_name = body.get('ImageName') or None
        inserted = body.get('Inserted') if isinstance(body.get('Inserted'), bool) else None
        if active.has(q.STALE_IMAGE_WHEN_EMPTY) and (inserted is False or body.get('ConnectedVia') == 'NotConnected'):
            image = image_name = None  # what an earlier session left behind (quirks table: supermicro-stale-image)
        return cls(
            id=slot_id,
            path=resource.path,
            name=body.get('Name'),
            media_types=media_types,
            inserted=inserted,
            image=str(image) if image else None,
            image_name=image_name,
            write_protected=body.get('WriteProtected') if isinstance(body.get('WriteProtected'), bool) else None,
            connected_via=body.get('ConnectedVia'),
            mount_method=method,
            not_mountable_reason=reason,
            resource=resource,
        )

    @property
    def mountable(self) -> bool:
        return self.mount_method is not None

    def accepts(self, media_type: str) -> bool:
        return any(m in self.media_types for m in MEDIA_TYPES[media_type])

    @property
    def occupied(self) -> bool:
        return bool(self.inserted) or bool(self.image)

    def image_matches(self, url: str) -> bool:
        if self.image:
            return self.image.strip() == url.strip()
        return bool(self.image_name) and self.image_name == image_basename(url)

    def holds(self, url: str, inserted: bool = True) -> bool:
        if not self.image_matches(url):
            return False
        return self.inserted is None or self.inserted == inserted

    def state(self) -> dict[str, t.Any]:
        """What ``diff`` shows for a slot."""
        return {'image': self.image, 'inserted': self.inserted, 'write_protected': self.write_protected}

    def as_dict(self) -> dict[str, t.Any]:
        return {
            'id': self.id,
            'name': self.name,
            'path': self.path,
            'media_types': list(self.media_types),
            'inserted': self.inserted,
            'image': self.image,
            'image_name': self.image_name,
            'write_protected': self.write_protected,
            'connected_via': self.connected_via,
            'mountable': self.mountable,
            'mount_method': self.mount_method,
            'not_mountable_reason': self.not_mountable_reason,
        }


@dataclasses.dataclass
class Outcome:
    """What a virtual media operation did (or would do in check mode)."""

    changed: bool
    slots: list[Slot]
    before: dict[str, dict[str, t.Any]]
    slot: Slot | None = None
    actions: list[str] = dataclasses.field(default_factory=list)

    def after(self) -> dict[str, dict[str, t.Any]]:
        return {s.id: s.state() for s in self.slots if s.mountable}


class VirtualMediaManager:
    """Virtual media slots of the system a ``RedfishClient`` selected."""

    def __init__(self, client: RedfishClient, check_mode: bool = False, verify_timeout: float | None = None) -> None:
        self.client = client
        self.check_mode = check_mode
        self.verify_timeout = min(15.0, float(client.options.timeout)) if verify_timeout is None else verify_timeout
        self._slots: list[Slot] | None = None
        self.collection_path: str | None = None
        self.warnings: list[str] = []

    # -- discovery -------------------------------------------------------------------------------

    def _find_collection(self) -> str:
        system = self.client.system()
        if not self.client.options.manager_id:
            link = ((system.json or {}).get('VirtualMedia') or {}).get('@odata.id')
            if link:
                return str(link)
        manager_path = self.client.manager_path()
        manager, _headers = self.client.get_json(manager_path)
        link = (manager.get('VirtualMedia') or {}).get('@odata.id')
        if link:
            return str(link)
        raise RedfishUnsupportedError('the BMC at %s has no VirtualMedia under %s nor under %s'
                                      % (self.client.base_url, system.path, manager_path), bmc=self.client.base_url)

    def slots(self) -> list[Slot]:
        if self._slots is None:
            self.collection_path = self._find_collection()
            active = self.client.quirks()
            collection, _headers = self.client.get_json(self.collection_path)
            members = [str(m['@odata.id']) for m in collection.get('Members') or [] if isinstance(m, dict) and m.get('@odata.id')]
            slots = [Slot.from_resource(self.client.read(path), active) for path in members]
            self._slots = sorted(slots, key=lambda slot: natural_key(slot.id))
        return self._slots

    def select(self, media_type: str, index: int) -> Slot:
        """The ``index``-th (1-based) mountable slot that accepts ``media_type``."""
        if media_type not in MEDIA_TYPES:
            raise RedfishSelectionError('media_type must be one of %s, got %r' % (', '.join(MEDIA_TYPES), media_type))
        if index < 1:
            raise RedfishSelectionError('slot must be 1 or more (slots are counted from 1), got %d' % index)
        slots = self.slots()
        candidates = [s for s in slots if s.mountable and s.accepts(media_type)]
        if index <= len(candidates):
            return candidates[index - 1]
        listing = '; '.join(describe_slot(s) for s in slots) or 'none'
        hint = ''
        if media_type == 'cd' and index == 2 and any(s.mountable and s.accepts('usb') for s in slots):
            hint = ' This BMC has a single virtual CD: put the task medium on media_type usb as a FAT image (task_iso format: fat).'
        raise RedfishSelectionError('media_type=%s slot=%d: the BMC at %s has %d mountable %s slot%s. Slots: %s.%s'
                                    % (media_type, index, self.client.base_url, len(candidates), media_type,
                                       '' if len(candidates) == 1 else 's', listing, hint), bmc=self.client.base_url)

    # -- single slot operations -----------------------------------------------------------------

    def _reread(self, slot: Slot) -> Slot:
        fresh = Slot.from_resource(self.client.read(slot.path), self.client.quirks())
        slots = self.slots()
        for i, existing in enumerate(slots):
            if existing.path == fresh.path:
                slots[i] = fresh
        return fresh

    def _insert_request(self, slot: Slot, url: str, inserted: bool, write_protected: bool, transfer_protocol: str | None) -> None:
        if slot.mount_method == 'patch':
            body = {'Image': url, 'Inserted': inserted, 'WriteProtected': write_protected}

            def still_needed(fresh: Resource) -> bool:
                return not self._held(Slot.from_resource(fresh, self.client.quirks()), url, inserted)

            self.client.patch_fresh(slot.resource, body, still_needed)
            return
        target = slot.resource.action_target(INSERT_ACTION) or slot.path + '/Actions/' + INSERT_ACTION
        # Inserted and WriteProtected only when they differ from the action's defaults: Supermicro X11/X12 refuse them
        payload: dict[str, t.Any] = {'Image': url}
        if not inserted:
            payload['Inserted'] = False
        if not write_protected:
            payload['WriteProtected'] = False
        if transfer_protocol:
            payload['TransferProtocolType'] = transfer_protocol
        while True:  # ends: each round removes or adds a parameter, at most three rounds
            try:
                self.client.post(target, payload)
                return
            except RedfishHTTPError as exc:
                refused = self._refused_flags(exc, payload)
                missing = missing_parameter(exc, payload)
                if refused:
                    for key in refused:
                        del payload[key]
                    self.warnings.append('the BMC at %s refused %s in InsertMedia; %s was sent again with Image only, so the BMC keeps its'
                                         ' defaults (quirks table: supermicro-insert-image-only)'
                                         % (self.client.base_url, ', '.join('%s=%s' % (k, v) for k, v in refused.items()), url))
                elif missing:
                    # the BMC names a parameter it requires (some iDRAC/XCC firmware): add it and send again
                    payload[missing] = ('HTTPS' if url.startswith('https://') else 'HTTP') if missing == 'TransferProtocolType' else 'Stream'
                else:
                    raise

    def _refused_flags(self, exc: RedfishHTTPError, payload: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Inserted/WriteProtected of ``payload`` that a 400 answer refuses, where the quirks table says such a refusal is retried."""
        if exc.status != 400:
            return {}
        text = ' '.join(m.message for m in exc.bmc_messages)
        if not self.client.quirks().matches(q.INSERT_IMAGE_ONLY_ON_REFUSAL, text):
            return {}
        if not re.search(r'\b(Inserted|WriteProtected)\b', text):
            return {}
        return {key: payload[key] for key in ('Inserted', 'WriteProtected') if key in payload}

    def _flags_kept_by_bmc(self) -> bool:
        """The BMC does not take Inserted/WriteProtected (quirks table): they are not compared, only the image is."""
        return self.client.quirks().has(q.INSERT_IMAGE_ONLY_ON_REFUSAL)

    def _held(self, slot: Slot, url: str, inserted: bool) -> bool:
        if self._flags_kept_by_bmc():
            return slot.image_matches(url) and slot.inserted is not False
        return slot.holds(url, inserted)

    def _insert(self, slot: Slot, url: str, inserted: bool, write_protected: bool, transfer_protocol: str | None) -> Slot:
        self._insert_request(slot, url, inserted, write_protected, transfer_protocol)
        deadline = time.monotonic() + self.verify_timeout
        attempt = 0
        while True:
            fresh = self._reread(slot)
            if self._held(fresh, url, inserted):
                return fresh
            if time.monotonic() >= deadline:
                raise RedfishVerifyError('InsertMedia of %s into slot %s answered success, but the slot shows image=%r inserted=%r'
                                         % (url, slot.id, fresh.image, fresh.inserted), bmc=self.client.base_url,
                                         method='GET', url=slot.path)
            self.client.policy.sleep(min(1.0, self.client.policy.delay(attempt)))
            attempt += 1

    def _eject_request(self, slot: Slot) -> None:
        if slot.mount_method == 'patch':
            body = {'Image': None, 'Inserted': False}
            self.client.patch_fresh(slot.resource, body, lambda fresh: Slot.from_resource(fresh, self.client.quirks()).occupied)
            return
        # an empty JSON object, not an empty body: iLO refuses an EjectMedia without a JSON body
        self.client.post(slot.resource.action_target(EJECT_ACTION) or slot.path + '/Actions/' + EJECT_ACTION, {})

    def _eject(self, slot: Slot) -> Slot:
        repeat = self.client.quirks().has(q.REPEAT_EJECT_UNTIL_VERIFIED)
        attempts = self.client.policy.retries + 1 if repeat else 1
        fresh = slot
        for attempt in range(attempts):
            self._eject_request(fresh)
            fresh = self._reread(fresh)
            if not fresh.occupied:
                return fresh
            if attempt + 1 < attempts:
                self.client.policy.sleep(self.client.policy.delay(attempt))
        raise RedfishVerifyError('EjectMedia on slot %s answered success %d time%s, but the slot still holds image=%r inserted=%r'
                                 % (slot.id, attempts, '' if attempts == 1 else 's', fresh.image, fresh.inserted),
                                 bmc=self.client.base_url, method='GET', url=slot.path)

    # -- module-level operations ----------------------------------------------------------------

    def _before(self) -> dict[str, dict[str, t.Any]]:
        return {s.id: s.state() for s in self.slots() if s.mountable}

    def ensure_present(self, url: str, media_type: str = 'cd', index: int = 1, inserted: bool = True, write_protected: bool = True,
                       transfer_protocol: str | None = None) -> Outcome:
        slot = self.select(media_type, index)
        before = self._before()
        wp_ok = slot.write_protected is None or slot.write_protected == write_protected or not inserted or self._flags_kept_by_bmc()
        if self._held(slot, url, inserted) and wp_ok:
            return Outcome(False, self.slots(), before, slot)
        actions = []
        previous = slot.image if slot.occupied else None
        if slot.occupied:
            actions.append('eject %s from slot %s' % (slot.image or slot.image_name or '(unnamed image)', slot.id))
        actions.append('insert %s into slot %s' % (url, slot.id))
        if self.check_mode:
            predicted = dataclasses.replace(slot, image=url, image_name=image_basename(url), inserted=inserted,
                                            write_protected=write_protected)
            return Outcome(True, [predicted if s.path == slot.path else s for s in self.slots()], before, predicted, actions)
        if slot.occupied:
            slot = self._eject(slot)
        try:
            slot = self._insert(slot, url, inserted, write_protected, transfer_protocol)
        except RedfishError as exc:
            exc.notes.append('image_url %s must be downloadable by the BMC itself' % url)
            if previous:
                exc.notes.append(self._restore(slot, previous, inserted, write_protected, transfer_protocol))
            raise
        return Outcome(True, self.slots(), before, slot, actions)

    def _restore(self, slot: Slot, image: str, inserted: bool, write_protected: bool, transfer_protocol: str | None) -> str:
        try:
            fresh = self._reread(slot)
            if not fresh.occupied:
                self._insert(fresh, image, inserted, write_protected, transfer_protocol)
            return 'the previous image %s was inserted again into slot %s' % (image, slot.id)
        except RedfishError as exc:
            return 'the previous image %s could not be inserted again into slot %s: %s' % (image, slot.id, exc.message)

    def ensure_absent(self, media_type: str = 'cd', index: int = 1, url: str | None = None) -> Outcome:
        slot = self.select(media_type, index)
        before = self._before()
        if not slot.occupied or (url is not None and not slot.image_matches(url)):
            return Outcome(False, self.slots(), before, slot)
        actions = ['eject %s from slot %s' % (slot.image or slot.image_name or '(unnamed image)', slot.id)]
        if self.check_mode:
            predicted = dataclasses.replace(slot, image=None, image_name=None, inserted=False)
            return Outcome(True, [predicted if s.path == slot.path else s for s in self.slots()], before, predicted, actions)
        slot = self._eject(slot)
        return Outcome(True, self.slots(), before, slot, actions)

    def eject_all(self) -> Outcome:
        before = self._before()
        occupied = [s for s in self.slots() if s.mountable and s.occupied]
        actions = ['eject %s from slot %s' % (s.image or s.image_name or '(unnamed image)', s.id) for s in occupied]
        if self.check_mode:
            paths = {s.path for s in occupied}
            predicted = [dataclasses.replace(s, image=None, image_name=None, inserted=False) if s.path in paths else s for s in self.slots()]
            return Outcome(bool(occupied), predicted, before, None, actions)
        for slot in occupied:
            self._eject(slot)
        return Outcome(bool(occupied), self.slots(), before, None, actions)


def missing_parameter(exc: RedfishHTTPError, payload: t.Mapping[str, t.Any]) -> str | None:
    """``TransferProtocolType`` or ``TransferMethod`` when a refused InsertMedia says it needs that parameter (and it was not sent)."""
    if exc.status != 400:
        return None
    text = ' '.join('%s %s' % (m.message_id, m.message) for m in exc.bmc_messages)
    for name in ('TransferProtocolType', 'TransferMethod'):
        if name not in payload and re.search(r'\b%s\b' % name, text) and re.search(r'Missing|required|GeneralError', text, re.IGNORECASE):
            return name
    return None


def describe_slot(slot: Slot) -> str:
    types = '/'.join(slot.media_types) or 'no media types'
    if not slot.mountable:
        return '%s (%s; not mountable: %s)' % (slot.id, types, slot.not_mountable_reason)
    return '%s (%s%s)' % (slot.id, types, ', holds %s' % (slot.image or slot.image_name) if slot.occupied else '')


def suggest_layout(slots: t.Sequence[Slot], active: q.ActiveQuirks) -> dict[str, t.Any]:
    """Where the two-media design puts its media on this BMC.

    The boot medium (maintenance ISO or installer) goes on the first CD slot.  The task medium goes on
    a second CD slot as an ISO when there is one, else on the first removable (USB) slot as a FAT image.
    """
    cds = [s for s in slots if s.mountable and s.accepts('cd')]
    usbs = [s for s in slots if s.mountable and s.accepts('usb') and s not in cds[:1]]
    layout: dict[str, t.Any] = {'boot': None, 'task': None}
    if cds:
        layout['boot'] = {'media_type': 'cd', 'slot': 1, 'slot_id': cds[0].id}
    prefer_usb = active.has(q.TASK_MEDIUM_ON_REMOVABLE)
    if len(cds) >= 2 and not (prefer_usb and usbs):
        layout['task'] = {'media_type': 'cd', 'slot': 2, 'slot_id': cds[1].id, 'format': 'iso'}
    elif usbs:
        index = [s for s in slots if s.mountable and s.accepts('usb')].index(usbs[0]) + 1
        layout['task'] = {'media_type': 'usb', 'slot': index, 'slot_id': usbs[0].id, 'format': 'fat'}
    return layout
