# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook receiver as a real process on 127.0.0.1, with helpers to create jobs, send signed
webhooks as a node would, and read the stored state back.

Any suite can use it (fixtures in ``fixtures_receiver.py``)::

    job = receiver.create_job('XF-1')                 # the 202 document: job_id, token, callback, recipe, media_url
    receiver.set_status(job['job_id'], 'provisioning')
    receiver.send_webhook(job, {'status': 'success'})   # signed with the job's token
    receiver.get_job(job['job_id'])['status'] == 'succeeded'
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import signal
import ssl
import sys
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from l3metal_contract import webhook as _webhook

from .ports import free_port
from .services import Service
from .store_view import StoreView

# Small valid recipes (validation is not what most receiver tests are about).
FIRMWARE_RECIPE: dict[str, t.Any] = {'task_target': 'supermicro-update.target', 'firmware_url': 'http://firmware.example.com/bios-1.2.bin'}
LINUX_RECIPE: dict[str, t.Any] = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'registry.example.com:5000/os-images/ubuntu-rootfs:22.04',
    'partition_layout': [
        {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'ESP', 'mountpoint': '/boot/efi'},
        {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root', 'mountpoint': '/'},
    ],
}


# A site node key (--node-key-file; baked into a site's maintenance image by maintenance_os/site/Containerfile).
NODE_KEY = 'site-node-key-0123456789abcdef0123456789abcdef'

_SERIALS = itertools.count(1)


def event_time(event: t.Mapping[str, t.Any]) -> float:
    """An event's ``at`` (the receiver's clock) as a POSIX timestamp."""
    return datetime.datetime.fromisoformat(event['at']).timestamp()


def step_durations(events: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, float]:
    """Seconds between each step's ``started`` and ``done`` webhooks, by the receiver's clock."""
    started: dict[str, float] = {}
    durations = {}
    for event in events:
        if event.get('type') == 'progress':
            if event['state'] == 'started':
                started[event['step']] = event_time(event)
            elif event['state'] == 'done' and event['step'] in started:
                durations[event['step']] = round(event_time(event) - started[event['step']], 1)
    return durations


def unique_serial(prefix: str = 'XF') -> str:
    """A serial number no other test of this session uses (for tests sharing one receiver)."""
    return '%s-%d-%05d' % (prefix, os.getpid(), next(_SERIALS))


def write_node_key(directory: Path, key: str = NODE_KEY) -> Path:
    """``directory/node-key`` (0600) holding ``key`` (or several keys, one per line)."""
    path = directory / 'node-key'
    path.write_text(key + '\n')
    path.chmod(0o600)
    return path


class Response(t.NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> t.Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class Receiver:
    """``python -m l3metal_receiver`` on 127.0.0.1:<free port> with its own data and media dirs."""

    def __init__(self, work_dir: Path, api_token: str | None = None, tls: tuple[str, str, str] | None = None,
                 extra_args: t.Sequence[str] = (), python: str = sys.executable, port: int | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.data_dir = self.work_dir / 'data'
        self.media_dir = self.work_dir / 'media'
        self.log_path = self.work_dir / 'receiver.log'
        # a fixed port where something outside knows it (a VM's kernel command line: l3metal_lab.node_images)
        self.port = port if port is not None else free_port()
        self.api_token = api_token
        self.tls = tls  # (cert, key, ca)
        self.extra_args = list(extra_args)
        self.python = python
        self.service: Service | None = None
        self.media_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)

    @property
    def database(self) -> Path:
        """The SQLite file (where the receiver keeps its jobs unless it was given ``--database-url``)."""
        return self.data_dir / 'receiver.sqlite3'

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL URL given with ``--database-url`` in ``extra_args``, or None (SQLite)."""
        for index, arg in enumerate(self.extra_args):
            if arg == '--database-url' and index + 1 < len(self.extra_args):
                return self.extra_args[index + 1]
            if arg.startswith('--database-url='):
                return arg.split('=', 1)[1]
        return None

    @property
    def store(self) -> str | Path:
        """Where its jobs are stored: the PostgreSQL URL or the SQLite file (for ``StoreView`` and ``StoreChecker``)."""
        return self.database_url or self.database

    def argv(self) -> list[str]:
        argv = [self.python, '-m', 'l3metal_receiver', '--host', '127.0.0.1', '--port', str(self.port),
                '--data-dir', str(self.data_dir), '--media-dir', str(self.media_dir)]
        if self.api_token:
            token_file = self.work_dir / 'api-token'
            token_file.write_text(self.api_token + '\n')
            os.chmod(token_file, 0o600)
            argv += ['--api-token-file', str(token_file)]
        if self.tls:
            argv += ['--tls-cert', self.tls[0], '--tls-key', self.tls[1]]
        return argv + self.extra_args

    def start(self) -> Receiver:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        env.pop('L3METAL_RECEIVER_API_TOKEN', None)
        self.service = Service('receiver', self.argv(), self.log_path, ready_url=self.url + '/healthz', env=env,
                               ca_file=self.tls[2] if self.tls else None)
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a power loss of the process."""
        if self.service is not None and self.service.process is not None and self.service.running:
            os.killpg(self.service.process.pid, signal.SIGKILL)
            self.service.process.wait(timeout=10)

    def restart(self) -> Receiver:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        return self.service.log_tail(lines) if self.service else ''

    # ------------------------------------------------------------------------------ HTTP

    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.tls[2]) if self.tls else None

    def request(self, method: str, path: str, body: t.Any = None, raw: bytes | None = None, headers: t.Mapping[str, str] | None = None,
                content_type: str | None = 'application/json', auth: bool = True, timeout: float = 30) -> Response:
        """One HTTP request; any status is returned (never raised).  ``body`` is sent as JSON, ``raw`` as is."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = dict(headers or {})
        if data is not None and content_type and 'Content-Type' not in all_headers:
            all_headers['Content-Type'] = content_type
        if auth and self.api_token and 'Authorization' not in all_headers:
            all_headers['Authorization'] = 'Bearer ' + self.api_token
        request = urllib.request.Request(self.url + path, data=data, headers=all_headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._context()) as answer:
                return Response(answer.status, dict(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as exc:
            with exc:  # close the connection now: an open one keeps the server lingering on an unread body
                return Response(exc.code, dict(exc.headers.items()), exc.read())

    def expect(self, status: int, method: str, path: str, **kwargs: t.Any) -> t.Any:
        response = self.request(method, path, **kwargs)
        if response.status != status:
            raise AssertionError('%s %s: expected %d, got %d: %s\nreceiver log:\n%s'
                                 % (method, path, status, response.status, response.body[:2000].decode('utf-8', 'replace'), self.log_tail()))
        return response.json if response.body else None

    def create_job(self, serial: str, recipe: t.Mapping[str, t.Any] | None = None, **extra: t.Any) -> dict[str, t.Any]:
        """Create a job (default: a small firmware recipe); return the 202 document with its token."""
        body = dict({'server_serial': serial, 'recipe': dict(recipe or FIRMWARE_RECIPE)}, **extra)
        return t.cast(dict[str, t.Any], self.expect(202, 'POST', '/api/v1/jobs', body=body))

    def get_job(self, job_id: str) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], self.expect(200, 'GET', '/api/v1/jobs/' + job_id))

    def events(self, job_id: str, after: int = 0) -> list[dict[str, t.Any]]:
        return t.cast(list[dict[str, t.Any]], self.expect(200, 'GET', '/api/v1/jobs/%s/events?after=%d' % (job_id, after))['events'])

    def list_jobs(self, **query: str) -> list[dict[str, t.Any]]:
        path = '/api/v1/jobs' + ('?' + urllib.parse.urlencode(query) if query else '')
        return t.cast(list[dict[str, t.Any]], self.expect(200, 'GET', path)['jobs'])

    def set_status(self, job_id: str, status: str, **fields: str) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], self.expect(200, 'POST', '/api/v1/jobs/%s/status' % job_id, body=dict(fields, status=status)))

    def signed_request(self, job: t.Mapping[str, t.Any], body: t.Mapping[str, t.Any] | bytes, delivery_id: str | None = None,
                       timestamp: int | None = None, token: str | None = None) -> tuple[str, bytes, dict[str, str]]:
        """(path, body bytes, headers) of a webhook for ``job`` signed as a node signs it."""
        data = body if isinstance(body, bytes) else _webhook.encode_body(body)
        headers = _webhook.sign(token or job['token'], data, delivery_id, timestamp)
        headers['Content-Type'] = 'application/json'
        return _webhook.WEBHOOK_PATH + urllib.parse.quote(job['server_serial'], safe=''), data, headers

    def send_webhook(self, job: t.Mapping[str, t.Any], body: t.Mapping[str, t.Any] | bytes, delivery_id: str | None = None,
                     timestamp: int | None = None, token: str | None = None) -> Response:
        """POST a webhook for ``job`` (a create_job document) signed with its token; return the answer."""
        path, data, headers = self.signed_request(job, body, delivery_id, timestamp, token)
        return self.request('POST', path, raw=data, headers=headers, auth=False)

    def send_site_webhook(self, serial: str, body: t.Mapping[str, t.Any] | bytes, site_key: str, delivery_id: str | None = None,
                          key_id: str = _webhook.SITE_KEY_ID) -> Response:
        """POST a webhook for ``serial`` signed with the site node key, as a node without a job token signs it."""
        path, data, headers = self.signed_request({'server_serial': serial}, body, delivery_id, token=_webhook.site_signing_key(site_key, serial))
        headers[_webhook.KEY_ID_HEADER] = key_id
        return self.request('POST', path, raw=data, headers=headers, auth=False)

    def sender(self, job: t.Mapping[str, t.Any], **kwargs: t.Any) -> _webhook.WebhookSender:
        """The node-side sender for ``job`` pointed at this receiver."""
        return _webhook.WebhookSender(self.url, job['server_serial'], job['token'], job_id=job['job_id'],
                                      ca_file=self.tls[2] if self.tls else None, **kwargs)

    # ------------------------------------------------------------------------------ stored state

    def snapshot(self) -> dict[str, list[tuple[t.Any, ...]]]:
        """Every stored row, read straight from the database (another connection; SQLite file or PostgreSQL): compare
        before and after a refused request."""
        return StoreView(self.store).snapshot()
