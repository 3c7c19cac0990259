# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A BMC that replays recorded vendor JSON over real HTTP on 127.0.0.1.

The sushy-tools emulator covers the standard behaviour in the integration tests; the vendor quirks
(Dell, HPE, Lenovo, Supermicro, iDRAC10) exist only on real hardware, so these tests serve the
vendor-shaped resources from ``fixtures/<vendor>.json`` and reproduce the recorded behaviour that the
quirks table handles: transient 500s, an eject that does not eject, PATCH mounting with If-Match, a
read-only Boot with a @Redfish.Settings object, a Boot PATCH that needs the full object, a boot
override refused during POST, a stale Image in an empty slot, an override silently downgraded, a
resource changed by someone else between a read and a PATCH (412), a settings object that keeps the
values it applied.  The answers to a PATCH (the resource, 204, messages only) and to a refused one (plain, with an
``ETag`` header, the resource) come in the shapes the rules pick, so a test can count the requests each costs.  Only the
state changes the tests need are implemented: virtual media insert/eject
(action or PATCH), Boot PATCH (system or settings object), reset, sessions.

A reset that starts the host also *boots* it, as far as the tests need: the override in force picks a
device (a BootOption by UefiTarget/BootNext and its RelatedItem slot, or the first inserted CD slot for
Cd/UsbCd), ``boots`` records what was started (the image URL of the slot, ``pxe`` or ``disk``), and a
``Once`` override is consumed (``BootSourceOverrideEnabled`` becomes ``Disabled``).  This is a
simulation: the rules are written from the vendor reports named in each fixture's ``_source``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import http.server
import json
import posixpath
import re
import threading
import typing as t
import urllib.parse
import uuid
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
OVERRIDE_KEYS = ('BootSourceOverrideTarget', 'BootSourceOverrideEnabled', 'BootSourceOverrideMode', 'BootNext', 'UefiTargetBootSourceOverride')
STARTS_HOST = frozenset(['On', 'ForceOn', 'ForceRestart', 'GracefulRestart', 'PowerCycle', 'PushPowerButton'])
APPLIED_AT = '2026-03-02T10:15:00+00:00'  # the Time the replay records for an application of settings


def norm(path: str) -> str:
    path = urllib.parse.urlsplit(path).path
    return path.rstrip('/') or '/'


@dataclasses.dataclass
class Request:
    method: str
    path: str
    body: t.Any
    headers: dict[str, str]


@dataclasses.dataclass
class Fault:
    method: str
    pattern: str
    error: str
    times: int


@dataclasses.dataclass
class Change:
    """Another client's write, applied just before a matching request is handled."""

    method: str
    pattern: str
    mutate: t.Callable[[dict[str, t.Any]], None]
    times: int


class ReplayBMC:
    """Serve a vendor fixture; ``rules`` switch on recorded vendor behaviour (see ``_patch_system`` etc.)."""

    def __init__(self, fixture: str, username: str = 'admin', password: str = 'secret', rules: t.Iterable[str] = ()) -> None:
        data = json.loads((FIXTURES / (fixture + '.json')).read_text())
        self.resources: dict[str, dict[str, t.Any]] = {norm(p): body for p, body in data['resources'].items()}
        self.headers: dict[str, dict[str, str]] = {norm(p): dict(h) for p, h in data.get('headers', {}).items()}
        self.errors: dict[str, dict[str, t.Any]] = data.get('errors', {})
        self.credentials = (username, password)
        self.rules = set(rules)
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.changes: list[Change] = []
        self.sticky_ejects = 0
        self.boots: list[str] = []
        self.pending_settings: set[str] = set()
        self.sessions: dict[str, str] = {}
        self.deleted_sessions: list[str] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- test API --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self._server.server_address[1]

    def start(self) -> ReplayBMC:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReplayBMC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, method: str, pattern: str, error: str, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` and the path regex with a recorded error."""
        self.faults.append(Fault(method, pattern, error, times))

    def change_before(self, method: str, pattern: str, mutate: t.Callable[[dict[str, t.Any]], None], times: int = 1) -> None:
        """Before the next ``times`` requests matching ``method`` and the path regex, change that resource as another
        client would (its ETag changes with it): the state a client read is then stale."""
        self.changes.append(Change(method, pattern, mutate, times))

    def get(self, path: str) -> dict[str, t.Any]:
        return self.resources[norm(path)]

    def sent(self, method: str | None = None, pattern: str = '') -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and re.search(pattern, r.path)]

    # -- state -----------------------------------------------------------------------------------

    def _etag(self, path: str) -> str | None:
        return self.headers.get(path, {}).get('ETag') or self.resources[path].get('@odata.etag')

    def _changed(self, path: str) -> None:
        body = self.resources[path]
        digest = '"%s"' % hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        if '@odata.etag' in body:
            body['@odata.etag'] = digest
        if 'ETag' in self.headers.get(path, {}):
            self.headers[path]['ETag'] = digest

    def _authorized(self, headers: t.Mapping[str, str]) -> bool:
        token = headers.get('X-Auth-Token')
        if token:
            return token in self.sessions
        auth = headers.get('Authorization', '')
        if auth.startswith('Basic '):
            user, _sep, password = base64.b64decode(auth[6:]).decode().partition(':')
            return (user, password) == self.credentials
        return False

    def _error(self, name: str) -> tuple[int, t.Any, dict[str, str]]:
        status = {'precondition_failed': 412, 'precondition_required': 428}.get(name, 500)
        error = self.errors.get(name) or {'status': status, 'body': {'error': {'code': 'Base.1.0.GeneralError', 'message': name}}}
        return error['status'], copy.deepcopy(error['body']), {}

    def handle(self, method: str, raw_path: str, body: t.Any, headers: dict[str, str]) -> tuple[int, t.Any, dict[str, str]]:
        path = norm(raw_path)
        with self._lock:
            self.requests.append(Request(method, path, body, headers))
            for change in self.changes:
                if change.times > 0 and change.method == method and re.search(change.pattern, path) and path in self.resources:
                    change.times -= 1
                    change.mutate(self.resources[path])
                    self._changed(path)
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                    fault.times -= 1
                    return self._error(fault.error)
            if path == '/redfish/v1' and method == 'GET':
                return 200, self.resources[path], {}
            sessions = self._sessions_path()
            if method == 'POST' and sessions and path == sessions:
                return self._create_session(body, raw_path)
            if not self._authorized(headers):
                status, error, extra = self._error('unauthorized')
                return 401, error, extra
            if method == 'DELETE' and path in self.sessions.values():
                token = next(k for k, v in self.sessions.items() if v == path)
                del self.sessions[token]
                self.deleted_sessions.append(path)
                return 204, None, {}
            if method == 'GET':
                if path not in self.resources:
                    return 404, {'error': {'code': 'Base.1.0.ResourceMissingAtURI', 'message': 'The resource at the URI %s was not found.' % path}}, {}
                extra = dict(self.headers.get(path, {}))
                etag = self._etag(path)
                if etag:
                    extra['ETag'] = etag
                return 200, self.resources[path], extra
            if method == 'POST' and path.endswith('VirtualMedia.InsertMedia'):
                return self._insert(path.rsplit('/Actions', 1)[0], body or {})
            if method == 'POST' and path.endswith('VirtualMedia.EjectMedia'):
                return self._eject(path.rsplit('/Actions', 1)[0])
            if method == 'POST' and path.endswith('ComputerSystem.Reset'):
                return self._reset(path.rsplit('/Actions', 1)[0], body or {})
            if method == 'PATCH' and path in self.resources:
                return self._patch(path, body or {}, headers)
            return 405, {'error': {'code': 'Base.1.0.GeneralError', 'message': '%s not allowed on %s' % (method, path)}}, {}

    def _sessions_path(self) -> str | None:
        link = ((self.resources['/redfish/v1'].get('Links') or {}).get('Sessions') or {}).get('@odata.id')
        return norm(link) if link else None

    def _create_session(self, body: t.Any, raw_path: str) -> tuple[int, t.Any, dict[str, str]]:
        if (body or {}).get('UserName') != self.credentials[0] or body.get('Password') != self.credentials[1]:
            return self._error('unauthorized')
        token = uuid.uuid4().hex
        session_id = str(len(self.sessions) + len(self.deleted_sessions) + 1)
        location = norm(raw_path) + '/' + session_id
        self.sessions[token] = location
        trailing = '/' if raw_path.endswith('/') else ''
        return 201, {'@odata.id': location + trailing, 'Id': session_id, 'UserName': body['UserName']}, {'X-Auth-Token': token,
                                                                                                         'Location': location + trailing}

    def _insert(self, slot: str, body: dict[str, t.Any]) -> tuple[int, t.Any, dict[str, str]]:
        if 'insert_rejects_flags' in self.rules and ('Inserted' in body or 'WriteProtected' in body):
            return self._error('action_parameter_unknown')
        refused = [key for key in ('Inserted', 'WriteProtected') if key in body]
        if 'insert_refuses_properties' in self.rules and refused:  # recorded wording, naming the first refused property
            status, error, extra = self._error('property_not_valid')
            for info in error['error']['@Message.ExtendedInfo']:
                info['Message'] = info['Message'].replace('Inserted', refused[0])
                info['MessageArgs'] = [refused[0]]
            return status, error, extra
        media = self.resources[slot]
        media.update(Image=body['Image'], ImageName=posixpath.basename(urllib.parse.urlsplit(body['Image']).path),
                     Inserted=body.get('Inserted', True), WriteProtected=body.get('WriteProtected', True), ConnectedVia='URI')
        self._changed(slot)
        return 204, None, {}

    def _eject(self, slot: str) -> tuple[int, t.Any, dict[str, str]]:
        if self.sticky_ejects > 0:  # recorded: 204, and the image stays inserted
            self.sticky_ejects -= 1
            return 204, None, {}
        media = self.resources[slot]
        media.update(Inserted=False, ConnectedVia='NotConnected')
        if 'stale_image' not in self.rules:  # Supermicro keeps Image/ImageName of the ejected medium
            media.update(Image=None, ImageName=None)
        self._changed(slot)
        return 204, None, {}

    def _reset(self, system_path: str, body: dict[str, t.Any]) -> tuple[int, t.Any, dict[str, str]]:
        system = self.resources[system_path]
        reset = body.get('ResetType')
        was = system.get('PowerState')
        system['PowerState'] = 'Off' if reset in ('ForceOff', 'GracefulShutdown') else 'On'
        starts = reset in STARTS_HOST and not (reset in ('On', 'ForceOn') and was == 'On')
        annotation = system.get('@Redfish.Settings') or {}
        settings = norm((annotation.get('SettingsObject') or {}).get('@odata.id') or '') if annotation else None
        if settings and settings in self.pending_settings and starts:
            # what was written to the settings object since the last application applies now; the object itself keeps
            # those values (iDRAC10), only the system records that they were applied
            settings_body = self.resources[settings]
            system['Boot'].update({k: v for k, v in (settings_body.get('Boot') or {}).items() if k in OVERRIDE_KEYS})
            settings_body.pop('@Redfish.SettingsApplyTime', None)
            self._changed(settings)
            annotation.update(Time=APPLIED_AT, Messages=[{'MessageId': 'Base.1.18.Success', 'Message': 'Successfully Completed Request',
                                                          'Severity': 'OK'}], ETag=self._etag(settings))
            self.pending_settings.discard(settings)
        if starts:
            self.boots.append(self._boot_host(system))
        self._changed(system_path)
        return 204, None, {}

    def _boot_host(self, system: dict[str, t.Any]) -> str:
        """What the host starts from: the override in force (then consumed if Once), else its disk."""
        boot = system.get('Boot') or {}
        enabled = boot.get('BootSourceOverrideEnabled')
        target = boot.get('BootSourceOverrideTarget')
        if enabled not in ('Once', 'Continuous') or target in (None, 'None'):
            return 'disk'
        if enabled == 'Once':
            boot['BootSourceOverrideEnabled'] = 'Disabled'
        if target == 'Pxe':
            return 'pxe'
        if target in ('UefiTarget', 'UefiBootNext'):
            key, value = (('UefiDevicePath', boot.get('UefiTargetBootSourceOverride')) if target == 'UefiTarget'
                          else ('BootOptionReference', boot.get('BootNext')))
            if target == 'UefiBootNext':
                boot['BootNext'] = None
            option = next((b for p, b in self.resources.items() if '/BootOptions/' in p and b.get(key) == value), None)
            return self._medium_of_option(option) if option else 'disk'
        if target in ('Cd', 'UsbCd') and 'cd_boots_physical_drive' not in self.rules:
            return self._first_inserted(('CD', 'DVD')) or 'disk'
        if target == 'Usb':
            return self._first_inserted(('USBStick', 'Floppy')) or 'disk'
        return 'disk'  # Hdd, or a physical drive with nothing in it

    def _medium_of_option(self, option: dict[str, t.Any]) -> str:
        for link in option.get('RelatedItem') or []:
            slot = self.resources.get(norm(link.get('@odata.id') or ''))
            if slot is not None and '/VirtualMedia/' in norm(link['@odata.id']):
                return str(slot['Image']) if slot.get('Inserted') and slot.get('Image') else 'disk'
        name = str(option.get('DisplayName') or option.get('Name') or '')
        if re.search(r'virtual\s*(optical|cd)', name, re.IGNORECASE):
            return self._first_inserted(('CD', 'DVD')) or 'disk'
        if re.search(r'virtual\s*floppy', name, re.IGNORECASE):
            return self._first_inserted(('USBStick', 'Floppy')) or 'disk'
        return 'pxe' if 'PXE' in name.upper() else 'disk'

    def _first_inserted(self, types: tuple[str, ...]) -> str | None:
        """The image of the first slot that accepts ``types`` and has a medium inserted: first by instance number, whatever
        the member order (iDRAC10 lists instance 2 first and boots instance 1, dell/iDRAC-Redfish-Scripting #324)."""
        def instance(member: dict[str, t.Any]) -> tuple[int, str]:
            last = norm(member['@odata.id']).rsplit('/', 1)[-1]
            return (int(last), '') if last.isdigit() else (0, last)

        for collection in [b for p, b in self.resources.items() if p.endswith('/VirtualMedia')]:
            for member in sorted(collection.get('Members') or [], key=instance):
                slot = self.resources.get(norm(member['@odata.id'])) or {}
                if any(m in types for m in slot.get('MediaTypes') or []) and slot.get('Inserted') and slot.get('Image'):
                    return str(slot['Image'])
        return None

    def _refusal(self, path: str, name: str) -> tuple[int, t.Any, dict[str, str]]:
        """A 412/428 to a PATCH of ``path``, in the answer shape the rules pick (not recorded: the recorded 412s are the
        plain error).  ``refusal_etag``: the error with the resource's current ETag in an ``ETag`` header;
        ``refusal_resource``: the current resource as the body (its ``@odata.etag``, when it has one, is the fresh ETag)."""
        status, error, extra = self._error(name)
        if 'refusal_etag' in self.rules and self._etag(path):
            extra['ETag'] = str(self._etag(path))
        if 'refusal_resource' in self.rules:
            error = copy.deepcopy(self.resources[path])
        return status, error, extra

    def _patched(self, path: str) -> tuple[int, t.Any, dict[str, str]]:
        """A PATCH that was applied, in the answer shape the rules pick: the resource with 200 (the default),
        ``patch_answers_204`` no body, ``patch_answers_messages`` 200 with a success message only."""
        if 'patch_answers_204' in self.rules:
            return 204, None, {}
        if 'patch_answers_messages' in self.rules:
            return 200, {'@Message.ExtendedInfo': [{'MessageId': 'Base.1.8.Success', 'Message': 'Successfully Completed Request',
                                                    'Severity': 'OK'}]}, {}
        extra = {'ETag': str(self._etag(path))} if 'ETag' in self.headers.get(path, {}) else {}
        return 200, self.resources[path], extra

    def _patch(self, path: str, body: dict[str, t.Any], headers: dict[str, str]) -> tuple[int, t.Any, dict[str, str]]:
        resource = self.resources[path]
        if_match = headers.get('If-Match')
        if if_match and self._etag(path) and if_match != self._etag(path):
            return self._refusal(path, 'precondition_failed')
        if 'if_match_required' in self.rules and not if_match and self._etag(path):
            return self._refusal(path, 'precondition_required')
        if '/VirtualMedia/' in path:
            if 'patch_needs_if_match' in self.rules and not if_match:
                return self._refusal(path, 'precondition_failed')
            image = body.get('Image')
            resource.update(Image=image, ImageName=posixpath.basename(urllib.parse.urlsplit(image).path) if image else None,
                            Inserted=bool(body.get('Inserted', bool(image))), ConnectedVia='URI' if image else 'NotConnected')
            if 'WriteProtected' in body:
                resource['WriteProtected'] = body['WriteProtected']
        elif 'Boot' in body:
            settings = ((resource.get('@Redfish.Settings') or {}).get('SettingsObject') or {}).get('@odata.id')
            if 'boot_readonly' in self.rules and settings:
                return self._error('property_not_writable')
            boot = dict(body['Boot'])
            if 'boot_full_object' in self.rules and not all(k in boot for k in OVERRIDE_KEYS[:3]):
                return self._error('property_missing')
            if 'once_dropped_with_mode' in self.rules and 'BootSourceOverrideMode' in boot and boot.get('BootSourceOverrideEnabled') == 'Once':
                boot['BootSourceOverrideEnabled'] = 'Disabled'  # recorded: answered 200, kept the target, not the Once
            resource.setdefault('Boot', {}).update(boot)
            if '@Redfish.SettingsApplyTime' in body:
                resource['@Redfish.SettingsApplyTime'] = dict(body['@Redfish.SettingsApplyTime'])
            if any(path == norm(((b.get('@Redfish.Settings') or {}).get('SettingsObject') or {}).get('@odata.id') or '')
                   for b in self.resources.values()):
                self.pending_settings.add(path)  # applies at the next reset that starts the host
        else:
            resource.update(body)
        self._changed(path)
        return self._patched(path)

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        bmc = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
                return

            def _serve(self) -> None:
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length) if length else b''
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors='replace')
                status, payload, extra = bmc.handle(self.command, self.path, body, dict(self.headers.items()))
                data = json.dumps(payload).encode() if payload is not None else b''
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                if data:
                    self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.send_header('Connection', 'close')
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler
