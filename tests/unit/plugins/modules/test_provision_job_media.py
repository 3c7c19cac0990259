# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provision_job_media: bad input fails before a request; check mode and a re-run send no upload; the upload is
streamed with its length and sha256; each refusal of the receiver names the option to change.

SIMULATION: the receiver here is a stdlib HTTP server in a thread that answers the documented shapes of
``GET /api/v1/jobs/{id}/media`` and ``PUT /api/v1/jobs/{id}/media/{name}`` (docs/receiver.md) and records what it was
sent.  The real receiver is exercised by tests/unit/receiver/test_app.py (the endpoints) and
tests/integration/roles/test_task_media.py (this module through the role, against the receiver process).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import typing as t

import pytest

from ansible_collections.l3metal.provision.plugins.modules import provision_job_media

CLOSED = 'http://127.0.0.1:9'
JOB = 'job-1'
MEDIA_URL = 'http://receiver.test/media/jobs/job-1/key/'


class FakeReceiver(http.server.ThreadingHTTPServer):
    """SIMULATION of the receiver's two media endpoints (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), Handler)
        self.media: dict[str, dict[str, t.Any]] = {}
        self.status = 'queued'
        self.max_size = 16 * 1024 * 1024
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []  # method, path, headers (lower-case names), body
        self.put_problem: tuple[int, dict[str, t.Any]] | None = None  # force the PUT's answer (a race the list did not show)

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeReceiver

    def log_message(self, *args: t.Any) -> None:
        pass

    def answer(self, status: int, doc: t.Mapping[str, t.Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json' if status < 400 else 'application/problem+json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(('GET', self.path, {k.lower(): v for k, v in self.headers.items()}, b''))
        if self.path != '/api/v1/jobs/%s/media' % JOB:
            return self.answer(404, {'status': 404, 'detail': 'job not found: %s' % self.path.split('/')[4]})
        active = self.server.status != 'complete'
        self.answer(200, {'job_id': JOB, 'job_status': self.server.status, 'max_size': self.server.max_size, 'media_url': MEDIA_URL if active else None,
                          'media': [dict(item, name=name) for name, item in sorted(self.server.media.items())]})

    def do_PUT(self) -> None:
        length = int(self.headers['Content-Length'])
        body = self.rfile.read(length)
        self.server.requests.append(('PUT', self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.server.put_problem:
            return self.answer(*self.server.put_problem)
        name = self.path.rsplit('/', 1)[1]
        digest = hashlib.sha256(body).hexdigest()
        if self.headers.get('X-Content-SHA256') != digest:
            return self.answer(400, {'status': 400, 'detail': 'X-Content-SHA256 mismatch'})
        item = {'sha256': digest, 'size': len(body), 'created_at': '2026-12-04T14:00:00.000Z', 'url': MEDIA_URL + name}
        self.server.media[name] = item
        self.answer(201, dict(item, job_id=JOB, name=name, changed=True))


@pytest.fixture
def receiver() -> t.Iterator[FakeReceiver]:
    server = FakeReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def medium(tmp_path):
    path = tmp_path / 'task.iso'
    path.write_bytes(bytes(range(256)) * 300)  # 76800 bytes: more than one block of http.client's streaming
    return path


def args(receiver_url: str, medium_path: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    return dict({'url': receiver_url, 'api_token': 'api-token', 'job_id': JOB, 'name': 'XF-1-task.iso', 'src': str(medium_path)}, **extra)


def puts(receiver: FakeReceiver) -> list[tuple[str, str, dict[str, str], bytes]]:
    return [request for request in receiver.requests if request[0] == 'PUT']


@pytest.mark.parametrize('extra, message', [
    ({'name': '.hidden'}, "name: '.hidden' must be a file name"),
    ({'name': 'dir/task.iso'}, "name: 'dir/task.iso' must be a file name"),
    ({'job_id': ''}, 'job_id: must be the id of an active job'),
    ({'src': '/nonexistent/task.iso'}, 'src: cannot read /nonexistent/task.iso'),
])
def test_bad_input_fails_naming_the_option_without_a_request(run_module, medium, extra, message):
    outcome = run_module(provision_job_media, args(CLOSED, medium, **extra))
    assert outcome.failed and outcome.result['msg'].startswith(message), outcome.result
    assert 'cannot reach' not in outcome.result['msg']


def test_a_directory_is_not_a_medium(run_module, tmp_path):
    outcome = run_module(provision_job_media, args(CLOSED, tmp_path))
    assert outcome.failed and outcome.result['msg'] == 'src: %s is not a regular file' % tmp_path


def test_unreachable_receiver_is_named(run_module, medium):
    outcome = run_module(provision_job_media, args(CLOSED, medium))
    assert outcome.failed and outcome.result['msg'].startswith('cannot reach the webhook receiver at %s/api/v1/jobs/%s/media' % (CLOSED, JOB))


def test_check_mode_then_upload_then_rerun(run_module, receiver, medium):
    content = medium.read_bytes()
    digest = hashlib.sha256(content).hexdigest()

    check = run_module(provision_job_media, args(receiver.url, medium), check_mode=True).result
    assert check['changed'] is True and check['sha256'] == digest and check['size'] == len(content)
    assert check['url'] == MEDIA_URL + 'XF-1-task.iso' and check['created_at'] is None
    assert puts(receiver) == [] and receiver.media == {}

    first = run_module(provision_job_media, args(receiver.url, medium)).result
    assert first['changed'] is True and first['sha256'] == digest and first['url'] == MEDIA_URL + 'XF-1-task.iso'
    [(_method, path, headers, body)] = puts(receiver)
    # what the receiver needs to check the upload, and the file's bytes exactly
    assert path == '/api/v1/jobs/%s/media/XF-1-task.iso' % JOB and body == content
    assert headers['content-length'] == str(len(content)) and headers['x-content-sha256'] == digest
    assert headers['content-type'] == 'application/octet-stream' and headers['authorization'] == 'Bearer api-token'
    assert 'transfer-encoding' not in headers

    # the same content again, in check mode or not: nothing is sent, nothing changes
    for check_mode in (True, False):
        again = run_module(provision_job_media, args(receiver.url, medium), check_mode=check_mode).result
        assert again['changed'] is False and again['created_at'] == '2026-12-04T14:00:00.000Z'
    assert len(puts(receiver)) == 1


def test_other_content_under_a_stored_name_names_the_name_in_check_mode_too(run_module, receiver, medium, tmp_path):
    run_module(provision_job_media, args(receiver.url, medium))
    other = tmp_path / 'other.iso'
    other.write_bytes(b'other content')
    for check_mode in (True, False):
        outcome = run_module(provision_job_media, args(receiver.url, other), check_mode=check_mode)
        assert outcome.failed and outcome.result['msg'].startswith('name: job job-1 already holds a medium XF-1-task.iso with other content')
        assert outcome.result['status_code'] == 409
    assert len(puts(receiver)) == 1


def test_a_complete_job_and_an_unknown_job_name_job_id(run_module, receiver, medium):
    unknown = run_module(provision_job_media, args(receiver.url, medium, job_id='job-2'))
    assert unknown.failed and unknown.result['msg'].startswith('job_id: the receiver has no job job-2') and unknown.result['status_code'] == 404
    receiver.status = 'complete'
    for check_mode in (True, False):
        complete = run_module(provision_job_media, args(receiver.url, medium), check_mode=check_mode)
        assert complete.failed and complete.result['msg'].startswith('job_id: job job-1 is complete and takes no more media')
    assert puts(receiver) == []


def test_a_file_over_the_receivers_limit_names_src_before_sending(run_module, receiver, medium):
    receiver.max_size = 1024
    outcome = run_module(provision_job_media, args(receiver.url, medium))
    assert outcome.failed and outcome.result['status_code'] == 413
    assert outcome.result['msg'].startswith('src: %s is 76800 bytes, larger than the receiver takes (1024 bytes' % medium)
    assert puts(receiver) == []


@pytest.mark.parametrize('status, problem, message', [
    (409, {'status': 409, 'code': 'medium_exists', 'detail': 'job job-1 already has a medium XF-1-task.iso with other content'},
     'name: job job-1 already holds a medium XF-1-task.iso with other content'),
    (409, {'status': 409, 'code': 'job_complete', 'detail': 'job job-1 is complete: it takes no more media'},
     'job_id: job job-1 is complete and takes no more media'),
    (413, {'status': 413, 'detail': 'body: the medium of 76800 bytes is larger than the limit of 1024 bytes'}, 'src: '),
    (404, {'status': 404, 'detail': 'job not found: job-1'}, 'job_id: the receiver has no job job-1'),
])
def test_a_refused_upload_names_the_option(run_module, receiver, medium, status, problem, message):
    """What the PUT answers when the state changed after the list (another controller, the job completed in between)."""
    receiver.put_problem = (status, problem)
    outcome = run_module(provision_job_media, args(receiver.url, medium))
    assert outcome.failed and outcome.result['msg'].startswith(message) and outcome.result['status_code'] == status, outcome.result


def test_the_upload_hands_the_open_file_to_open_url_not_its_bytes(monkeypatch, medium):
    """Streamed from disk: http.client reads a file object in blocks; the file is never read whole into memory."""
    from ansible_collections.l3metal.provision.plugins.module_utils import _receiver

    seen: dict[str, t.Any] = {}

    class Answer:
        def read(self) -> bytes:
            return b'{"changed": true}'

    def fake_open_url(url: str, data: t.Any = None, **kwargs: t.Any) -> Answer:
        seen.update(url=url, data=data, name=getattr(data, 'name', None), closed_during=data.closed, headers=kwargs['headers'])
        return Answer()

    monkeypatch.setattr(_receiver, 'open_url', fake_open_url)
    _receiver.ReceiverClient('http://receiver.test').upload_medium('job 1', 'a.iso', str(medium))
    assert not isinstance(seen['data'], (bytes, bytearray)) and seen['name'] == str(medium) and seen['closed_during'] is False
    assert seen['data'].closed  # and closed once sent
    assert seen['url'] == 'http://receiver.test/api/v1/jobs/job%201/media/a.iso'
    assert seen['headers']['Content-Length'] == str(medium.stat().st_size)


def test_the_info_module_tells_what_is_stored(run_module, receiver, medium):
    from ansible_collections.l3metal.provision.plugins.modules import provision_job_media_info

    before = run_module(provision_job_media_info, {'url': receiver.url, 'job_id': JOB, 'name': 'XF-1-task.iso'}).result
    assert before['changed'] is False and before['medium'] is None and before['media'] == [] and before['job_status'] == 'queued'
    assert before['media_url'] == MEDIA_URL and before['max_size'] == 16 * 1024 * 1024
    run_module(provision_job_media, args(receiver.url, medium))
    after = run_module(provision_job_media_info, {'url': receiver.url, 'job_id': JOB, 'name': 'XF-1-task.iso'}).result
    assert after['medium']['sha256'] == hashlib.sha256(medium.read_bytes()).hexdigest() and after['medium']['url'] == MEDIA_URL + 'XF-1-task.iso'
    assert [item['name'] for item in after['media']] == ['XF-1-task.iso']
    unknown = run_module(provision_job_media_info, {'url': receiver.url, 'job_id': 'job-2'})
    assert unknown.failed and unknown.result['msg'].startswith('job_id: the receiver has no job job-2')
