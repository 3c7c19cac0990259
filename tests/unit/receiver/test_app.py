# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiver's HTTP layer in-process: ``create_app`` under aiohttp's own test client.

The same app the process serves (routes, middleware, the service started by the app's cleanup
context), without a subprocess: fast enough to try many requests.  The subprocess suites in
tests/integration/receiver/ prove what only a real process shows (kill -9, signals, the systemd unit).
Every test runs twice: on SQLite and on a real PostgreSQL server (a new database per test, ``postgres_url``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import typing as t
import urllib.parse
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from l3metal_contract import webhook
from l3metal_receiver.server import Settings, create_app

API_TOKEN = 'in-process-api-token'
FIRMWARE = {'task_target': 'supermicro-update.target', 'firmware_url': 'http://firmware.example.com/bios.bin'}
AUTH = {'Authorization': 'Bearer ' + API_TOKEN}


_DATABASE: dict[str, str | None] = {'url': None}


@pytest.fixture(autouse=True, params=['sqlite', 'postgresql'])
def backend(request: pytest.FixtureRequest) -> t.Iterator[str]:
    """The store every app of the test uses: SQLite in its data directory, or a new PostgreSQL database."""
    _DATABASE['url'] = request.getfixturevalue('postgres_url') if request.param == 'postgresql' else None
    yield request.param
    _DATABASE['url'] = None


def settings(tmp_path: Path, **changes: t.Any) -> Settings:
    values: dict[str, t.Any] = dict(host='127.0.0.1', port=0, data_dir=tmp_path / 'data', media_dir=tmp_path / 'media', api_token=API_TOKEN,
                                    database_url=_DATABASE['url'])
    values.update(changes)
    return Settings(**values)


def run(tmp_path: Path, scenario: t.Callable[[TestClient], t.Awaitable[None]], **changes: t.Any) -> None:
    """Start the app under the test client, run ``scenario`` against it, stop the app (its cleanup commits and closes)."""
    async def main() -> None:
        async with TestClient(TestServer(create_app(settings(tmp_path, **changes)))) as client:
            await scenario(client)
    asyncio.run(main())


async def create_job(client: TestClient, serial: str, recipe: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    response = await client.post('/api/v1/jobs', json={'server_serial': serial, 'recipe': dict(recipe or FIRMWARE)}, headers=AUTH)
    assert response.status == 202, await response.text()
    return t.cast(dict[str, t.Any], await response.json())


async def post_webhook(client: TestClient, job: t.Mapping[str, t.Any], body: t.Mapping[str, t.Any], delivery_id: str | None = None,
                       token: str | None = None) -> tuple[int, t.Any]:
    raw = webhook.encode_body(body)
    headers = webhook.sign(token or job['token'], raw, delivery_id)
    headers['Content-Type'] = 'application/json'
    response = await client.post('/api/v1/status-webhook/' + job['server_serial'], data=raw, headers=headers)
    return response.status, await response.json()


async def events(client: TestClient, job_id: str) -> list[dict[str, t.Any]]:
    response = await client.get('/api/v1/jobs/%s/events' % job_id, headers=AUTH)
    assert response.status == 200
    return t.cast(list[dict[str, t.Any]], (await response.json())['events'])


def test_a_job_runs_from_creation_to_success(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-APP-1')
        assert job['status'] == 'queued' and job['callback']['job_id'] == job['job_id'] and len(job['token']) >= 32
        assert await post_webhook(client, job, webhook.progress_body('firmware-flash.service', 'started')) == \
            (200, {'job_id': job['job_id'], 'status': 'provisioning'})
        assert (await post_webhook(client, job, webhook.success_body()))[0] == 200
        response = await client.get('/api/v1/jobs/' + job['job_id'], headers=AUTH)
        stored = await response.json()
        assert stored['status'] == 'succeeded' and 'token' not in stored
        kinds = [(e['type'], e.get('status') or e.get('step')) for e in await events(client, job['job_id'])]
        assert kinds == [('status', 'queued'), ('status', 'provisioning'), ('progress', 'firmware-flash.service'), ('status', 'succeeded')]
    run(tmp_path, scenario)


def test_state_outlives_the_app(tmp_path):
    """What one app committed, the next app on the same data directory reads (the cleanup context committed and closed)."""
    created: dict[str, t.Any] = {}

    async def first(client: TestClient) -> None:
        created.update(await create_job(client, 'XF-APP-2'))

    async def second(client: TestClient) -> None:
        response = await client.get('/api/v1/jobs?server_serial=XF-APP-2', headers=AUTH)
        assert [job['job_id'] for job in (await response.json())['jobs']] == [created['job_id']]
        # and its token still verifies: the signing cache is rebuilt from the database
        assert (await post_webhook(client, created, webhook.success_body()))[0] == 200

    run(tmp_path, first)
    run(tmp_path, second)


def test_the_job_api_needs_the_token_and_the_webhook_its_signature(tmp_path):
    async def scenario(client: TestClient) -> None:
        response = await client.post('/api/v1/jobs', json={'server_serial': 'XF-APP-3', 'recipe': FIRMWARE})
        assert response.status == 401 and response.content_type == 'application/problem+json'
        assert (await client.get('/api/v1/jobs', headers={'Authorization': 'Bearer wrong'})).status == 401
        job = await create_job(client, 'XF-APP-3')
        status, doc = await post_webhook(client, job, webhook.success_body(), token='not-the-token-' * 3)
        assert status == 401 and doc['status'] == 401
        assert [e.get('status') for e in await events(client, job['job_id'])] == ['queued']  # refused: nothing recorded
    run(tmp_path, scenario)


def test_a_delivery_is_recorded_once(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-APP-4')
        body = webhook.progress_body('partition.service', 'started')
        assert (await post_webhook(client, job, body, delivery_id='delivery-0001'))[0] == 200
        assert (await post_webhook(client, job, body, delivery_id='delivery-0001'))[0] == 409
        assert [e.get('step') for e in await events(client, job['job_id']) if e['type'] == 'progress'] == ['partition.service']
    run(tmp_path, scenario)


def test_invalid_recipes_are_refused_with_every_problem_and_store_nothing(tmp_path):
    async def scenario(client: TestClient) -> None:
        response = await client.post('/api/v1/jobs', headers=AUTH, json={'server_serial': 'XF-APP-5', 'recipe': {
            'task_target': 'install-linux.target', 'target_disk': 'sda'}})
        assert response.status == 400
        doc = await response.json()
        paths = sorted(error['path'] for error in doc['errors'])
        assert 'recipe.oci_url' in paths and 'recipe.target_disk' in paths
        listed = await (await client.get('/api/v1/jobs?server_serial=XF-APP-5', headers=AUTH)).json()
        assert listed['jobs'] == []
    run(tmp_path, scenario)


def test_one_active_job_per_server(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-APP-6')
        response = await client.post('/api/v1/jobs', headers=AUTH, json={'server_serial': 'XF-APP-6', 'recipe': FIRMWARE})
        assert response.status == 409 and job['job_id'] in (await response.text())
    run(tmp_path, scenario)


def test_media_with_ranges_and_conditional_requests(tmp_path):
    media = tmp_path / 'media'
    media.mkdir()
    (media / 'maintenance.iso').write_bytes(bytes(range(256)) * 16)

    async def scenario(client: TestClient) -> None:
        whole = await client.get('/media/maintenance.iso')
        assert whole.status == 200 and len(await whole.read()) == 4096
        etag = whole.headers['ETag']
        part = await client.get('/media/maintenance.iso', headers={'Range': 'bytes=256-511'})
        assert part.status == 206 and part.headers['Content-Range'] == 'bytes 256-511/4096' and await part.read() == bytes(range(256))
        assert (await client.get('/media/maintenance.iso', headers={'Range': 'bytes=5000-'})).status == 416
        assert (await client.get('/media/maintenance.iso', headers={'If-None-Match': etag})).status == 304
        assert (await client.get('/media/../data/receiver.sqlite3')).status == 404
        assert (await client.get('/media/missing.iso')).status == 404
    run(tmp_path, scenario)


def test_long_poll_wakes_on_the_event(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-APP-7')
        last = (await events(client, job['job_id']))[-1]['seq']
        poll = asyncio.ensure_future(client.get('/api/v1/jobs/%s/events?after=%d&wait=30' % (job['job_id'], last), headers=AUTH))
        for _attempt in range(200):  # until the poll has parked at the receiver (healthz counts parked polls)
            if (await (await client.get('/healthz')).json())['long_polls'] == 1:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError('the long poll never parked')
        loop = asyncio.get_running_loop()
        sent = loop.time()
        assert (await post_webhook(client, job, webhook.progress_body('partition.service', 'started')))[0] == 200
        answer = await asyncio.wait_for(poll, 10)
        assert loop.time() - sent < 5
        assert [e.get('step') for e in (await answer.json())['events']] == [None, 'partition.service']
    run(tmp_path, scenario)


@pytest.mark.parametrize('raw,status', [
    (b'{"server_serial": "XF-APP-8", "recipe": ', 400),   # not JSON
    (b'[]', 400),                                          # not an object
    (json.dumps({'server_serial': 'XF APP', 'recipe': FIRMWARE}).encode(), 400),  # a serial with a space
])
def test_bad_job_requests_are_400_problems(tmp_path, raw, status):
    async def scenario(client: TestClient) -> None:
        response = await client.post('/api/v1/jobs', data=raw, headers=dict(AUTH, **{'Content-Type': 'application/json'}))
        assert response.status == status and response.content_type == 'application/problem+json'
        assert (await response.json())['status'] == status
    run(tmp_path, scenario)


MEDIUM = bytes(range(256)) * 40 + b'tail'   # 10244 bytes: Range reads at both ends


async def put_medium(client: TestClient, job: t.Mapping[str, t.Any], name: str, content: bytes, token: str | None = None,
                     headers: t.Mapping[str, str] | None = None) -> tuple[int, t.Any]:
    sent = {'Authorization': 'Bearer ' + (token or API_TOKEN), 'Content-Type': 'application/octet-stream'}
    sent.update(headers or {})
    response = await client.put('/api/v1/jobs/%s/media/%s' % (job['job_id'], name), data=content, headers=sent)
    return response.status, await response.json()


def test_an_uploaded_medium_is_served_like_a_file_with_ranges_and_goes_with_the_job(tmp_path):
    digest = hashlib.sha256(MEDIUM).hexdigest()

    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-MED-1')
        # the job's own token may upload (what a playbook without the API token holds), with the sha256 checked
        status, doc = await put_medium(client, job, 'task.iso', MEDIUM, token=job['token'], headers={'X-Content-SHA256': digest.upper()})
        assert status == 201 and doc['sha256'] == digest and doc['size'] == len(MEDIUM) and doc['changed'] is True
        assert doc['url'] == job['media_url'] + 'task.iso'
        # the same content again: idempotent (200, changed false); other content under that name: 409, the first one kept
        status, again = await put_medium(client, job, 'task.iso', MEDIUM)
        assert status == 200 and again['changed'] is False and again['created_at'] == doc['created_at']
        status, conflict = await put_medium(client, job, 'task.iso', b'other')
        assert status == 409 and conflict['code'] == 'medium_exists'
        path = '/media/jobs/%s/%s/task.iso' % (job['job_id'], job['media_url'].rstrip('/').rsplit('/', 1)[1])
        whole = await client.get(path)
        assert whole.status == 200 and await whole.read() == MEDIUM and whole.headers['Accept-Ranges'] == 'bytes'
        etag = whole.headers['ETag']
        part = await client.get(path, headers={'Range': 'bytes=10240-'})
        assert part.status == 206 and await part.read() == b'tail' and part.headers['Content-Range'] == 'bytes 10240-10243/10244'
        assert (await client.get(path, headers={'Range': 'bytes=-3'})).headers['Content-Range'] == 'bytes 10241-10243/10244'
        assert (await client.get(path, headers={'Range': 'bytes=20000-'})).status == 416
        assert (await client.get(path, headers={'If-None-Match': etag})).status == 304
        head = await client.head(path)
        assert head.status == 200 and head.headers['Content-Length'] == str(len(MEDIUM)) and head.headers['ETag'] == etag
        # written from the database: a receiver that never had the file (its directory removed) serves it with the same ETag
        for leftover in (tmp_path / 'media' / 'jobs' / job['job_id']).iterdir():
            leftover.unlink()
        again_whole = await client.get(path)
        assert again_whole.status == 200 and await again_whole.read() == MEDIUM and again_whole.headers['ETag'] == etag
        # complete: the media go with the job (410 by URL, no row left, no more uploads)
        response = await client.post('/api/v1/jobs/%s/status' % job['job_id'], json={'status': 'complete'}, headers=AUTH)
        assert response.status == 200
        assert (await client.get(path)).status == 410
        status, refused = await put_medium(client, job, 'late.iso', MEDIUM)
        assert status == 409 and refused['code'] == 'job_complete'
    run(tmp_path, scenario)


def test_a_medium_upload_is_refused_with_the_field_named_and_nothing_stored(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-MED-2')
        other = await create_job(client, 'XF-MED-3')
        # another job's token, no token, a wrong one: 401
        assert (await put_medium(client, job, 'a.iso', b'x', token=other['token']))[0] == 401
        response = await client.put('/api/v1/jobs/%s/media/a.iso' % job['job_id'], data=b'x')
        assert response.status == 401
        status, doc = await put_medium(client, job, '.hidden', b'x')
        assert status == 400 and doc['errors'][0]['path'] == 'name'
        status, doc = await put_medium(client, job, 'a.iso', b'x', headers={'X-Content-SHA256': 'abc'})
        assert status == 400 and doc['errors'][0]['path'] == 'X-Content-SHA256'
        status, doc = await put_medium(client, job, 'a.iso', b'x', headers={'X-Content-SHA256': '0' * 64})
        assert status == 400 and doc['errors'][0]['path'] == 'X-Content-SHA256' and 'nothing was stored' in doc['detail']
        status, doc = await put_medium(client, job, 'big.iso', b'x' * 1025)
        assert status == 413 and doc['errors'][0]['path'] == 'body'
        assert (await put_medium(client, {'job_id': 'no-such-job'}, 'a.iso', b'x'))[0] == 404
        media_path = urllib.parse.urlsplit(job['media_url']).path
        for name in ('a.iso', 'big.iso'):  # nothing was stored: 404 by URL
            assert (await client.get(media_path + name)).status == 404
        # at the limit: accepted
        assert (await put_medium(client, job, 'big.iso', b'x' * 1024))[0] == 201
    run(tmp_path, scenario, max_medium_bytes=1024)


async def list_media(client: TestClient, job: t.Mapping[str, t.Any], token: str | None = None) -> tuple[int, t.Any]:
    headers = {'Authorization': 'Bearer ' + token} if token else {}
    response = await client.get('/api/v1/jobs/%s/media' % job['job_id'], headers=headers)
    return response.status, await response.json()


def test_the_media_list_tells_what_is_stored_without_writing(tmp_path):
    """GET .../media: what a controller reads in check mode and before an upload (name, sha256, size, url, the limit)."""
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-MED-4')
        status, empty = await list_media(client, job, API_TOKEN)
        assert status == 200
        assert empty == {'job_id': job['job_id'], 'job_status': 'queued', 'max_size': 2048, 'media_url': job['media_url'], 'media': []}
        # a file placed in the job's media directory is not an uploaded medium: not listed
        Path(job['media_dir'], 'placed.iso').write_bytes(b'by hand')
        assert (await list_media(client, job, API_TOKEN))[1]['media'] == []
        _status, put = await put_medium(client, job, 'task.iso', MEDIUM[:2000])
        _status, other = await put_medium(client, job, 'a.img', b'fat')
        # the job's own token reads it too; the list is sorted by name and each entry agrees with what the PUT answered
        status, listed = await list_media(client, job, job['token'])
        assert status == 200 and [item['name'] for item in listed['media']] == ['a.img', 'task.iso']
        by_name = {item['name']: item for item in listed['media']}
        for answer in (put, other):
            assert by_name[answer['name']] == {key: answer[key] for key in ('name', 'sha256', 'size', 'created_at', 'url')}
        assert by_name['task.iso']['sha256'] == hashlib.sha256(MEDIUM[:2000]).hexdigest()
        # reading changed nothing: the same content again is still "not changed"
        assert (await put_medium(client, job, 'task.iso', MEDIUM[:2000]))[1]['changed'] is False
        # complete: the media went with the job, the status says why
        response = await client.post('/api/v1/jobs/%s/status' % job['job_id'], json={'status': 'complete'}, headers=AUTH)
        assert response.status == 200
        status, done = await list_media(client, job, API_TOKEN)
        assert status == 200 and done['job_status'] == 'complete' and done['media'] == [] and done['media_url'] is None
    run(tmp_path, scenario, max_medium_bytes=2048)


def test_the_media_list_needs_the_api_token_or_the_jobs_own(tmp_path):
    async def scenario(client: TestClient) -> None:
        job = await create_job(client, 'XF-MED-5')
        other = await create_job(client, 'XF-MED-6')
        await put_medium(client, job, 'task.iso', b'secret medium')
        for token in (None, other['token'], 'wrong'):
            status, doc = await list_media(client, job, token)
            assert status == 401 and doc['status'] == 401 and 'media' not in doc
        assert (await list_media(client, {'job_id': 'no-such-job'}, API_TOKEN))[0] == 404
    run(tmp_path, scenario)


def test_a_replay_after_the_serial_got_a_new_job_is_401_and_changes_nothing(tmp_path):
    """A completed job's delivery sent again once a new job holds the serial is checked against the new job's token:
    401, and neither job changes (the fuzz suite found this answer; its oracle expected only 400/404/409)."""
    async def scenario(client: TestClient) -> None:
        old = await create_job(client, 'XF-APP-REPLAY')
        assert (await post_webhook(client, old, webhook.progress_body('partition.service', 'done'), delivery_id='delivery-replay-1'))[0] == 200
        response = await client.post('/api/v1/jobs/%s/status' % old['job_id'], json={'status': 'complete'}, headers=AUTH)
        assert response.status == 200, await response.text()
        new = await create_job(client, 'XF-APP-REPLAY')
        before = (await events(client, old['job_id']), await events(client, new['job_id']))
        status, doc = await post_webhook(client, old, webhook.success_body(), delivery_id='delivery-replay-1')
        assert status == 401 and doc['status'] == 401
        assert (await events(client, old['job_id']), await events(client, new['job_id'])) == before
    run(tmp_path, scenario)
