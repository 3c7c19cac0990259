# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP: routes, request checks and error documents.  The work is done by ``JobService``.

Errors are RFC 9457 problem documents (``application/problem+json``): ``status``, ``title``,
``detail`` and, for invalid input, ``errors`` (a list of ``{"path", "message"}``).  A request that
is refused changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import typing as t

from aiohttp import hdrs, web

from l3metal_contract import webhook
from l3metal_contract.jobs import ACTIVE_STATUSES, FAILED, SERIAL_PATTERN, STATUSES, USER_TRANSITIONS
from l3metal_contract.recipe import RecipeError
from l3metal_contract.recipe_schema import PAYLOAD_FILES

from .committer import CommitterStopped
from .media import media_response, public_media_path
from .service import JobService, MediaGone, SignatureRejected, SiteKeyForbidden
from .store import ActiveJobExists, DuplicateDelivery, JobMismatch, JobNotFound, NoActiveJob, StatusRejected, TokenNotReissuable

LOG = logging.getLogger('l3metal_receiver.api')

SERVICE_KEY: web.AppKey[JobService] = web.AppKey('service', JobService)
API_TOKEN_KEY: web.AppKey[str] = web.AppKey('api_token', str)  # empty: the job API is open

MAX_JOB_BODY = 17 * 1024 * 1024    # a recipe may be 16 MiB (MAX_RECIPE_BYTES) plus the envelope
MAX_SMALL_BODY = 16 * 1024         # status transitions
MAX_LONG_POLL = 60.0
MAX_LIST_LIMIT = 1000
MAX_FIELD = 2048
_URL = re.compile(r'^https?://[^\s/?#]+[^\s?#]*$')
USER_PATHS = '/api/v1/jobs'


class ApiError(Exception):
    """An HTTP error answered as a problem document."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None,
                 **extra: t.Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None,
            **extra: t.Any) -> web.Response:
    doc: dict[str, t.Any] = {'type': 'about:blank', 'title': _TITLES.get(status, 'Error'), 'status': status, 'detail': detail}
    if errors is not None:
        doc['errors'] = errors
    doc.update(extra)
    return web.Response(status=status, body=_dumps(doc), content_type='application/problem+json', headers=headers)


_TITLES = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
           410: 'Gone', 413: 'Content Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable'}


def _dumps(doc: t.Any) -> bytes:
    return json.dumps(doc, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def json_response(doc: t.Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=_dumps(doc), content_type='application/json', headers=headers)


def _field_errors(problems: t.Sequence[str]) -> list[dict[str, str]]:
    out = []
    for text in problems:
        path, sep, message = text.partition(': ')
        out.append({'path': path, 'message': message} if sep and ' ' not in path else {'path': 'body', 'message': text})
    return out


def _map_error(exc: BaseException) -> web.Response | None:
    """A problem document for a domain error, or None for an unexpected exception."""
    if isinstance(exc, ApiError):
        return problem(exc.status, exc.detail, exc.errors, exc.headers, **exc.extra)
    if isinstance(exc, RecipeError):
        return problem(400, exc.summary(), [{'path': 'recipe' if p.path == 'recipe' else 'recipe.' + p.path, 'message': p.message}
                                            for p in exc.problems])
    if isinstance(exc, webhook.BodyError):
        return problem(400, 'invalid body: ' + str(exc), _field_errors(exc.problems))
    if isinstance(exc, SignatureRejected):
        return problem(401, str(exc))
    if isinstance(exc, SiteKeyForbidden):
        return problem(403, str(exc))
    if isinstance(exc, (JobNotFound, NoActiveJob)):
        return problem(404, str(exc))
    if isinstance(exc, MediaGone):
        return problem(410, str(exc))
    if isinstance(exc, ActiveJobExists):
        service_doc = {'job_id': exc.job.job_id, 'status': exc.job.status, 'server_serial': exc.job.server_serial,
                       'recipe_sha256': exc.job.recipe_sha256}
        return problem(409, str(exc), active_job=service_doc)
    if isinstance(exc, StatusRejected):
        return problem(409, str(exc), job_status=exc.status)
    if isinstance(exc, (DuplicateDelivery, JobMismatch, TokenNotReissuable)):
        return problem(409, str(exc))
    if isinstance(exc, CommitterStopped):
        return problem(503, str(exc), headers={'Retry-After': '5'})
    return None


def _check_api_token(request: web.Request) -> None:
    token = request.app[API_TOKEN_KEY]
    if token and request.path.startswith(USER_PATHS):
        header = request.headers.get(hdrs.AUTHORIZATION, '')
        scheme, _sep, given = header.partition(' ')
        if scheme.lower() != 'bearer' or not hmac.compare_digest(given.strip().encode('utf-8', 'replace'), token.encode('utf-8')):
            raise ApiError(401, 'this endpoint needs the API token: Authorization: Bearer <token>' if not header else 'wrong API token',
                           headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="l3metal-receiver"'})


@web.middleware
async def api_middleware(request: web.Request, handler: t.Callable[[web.Request], t.Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The API token for the user endpoints, and every error as a problem document (one middleware: it runs per webhook)."""
    try:
        _check_api_token(request)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text.strip() if exc.text and not exc.text.startswith(str(exc.status)) else '%s %s' % (request.method, request.path)
        return problem(exc.status, detail if exc.status != 404 else 'not found: %s' % request.path,
                       headers={k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW,)})
    except Exception as exc:  # pylint: disable=broad-exception-caught
        response = _map_error(exc)
        if response is None:
            LOG.exception('unexpected error on %s %s', request.method, request.path)
            return problem(500, 'internal error; see the receiver log')
        return response


# ----------------------------------------------------------------------------------------- request helpers

async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_type != 'application/json':
        raise ApiError(415, 'Content-Type must be application/json, got %s' % (request.headers.get(hdrs.CONTENT_TYPE) or 'none'))
    length = request.content_length
    if length is not None:
        if length > limit:
            raise ApiError(413, 'body of %d bytes is larger than the limit of %d bytes' % (length, limit))
        if length == 0:
            return b''
        try:
            return await request.content.readexactly(length)  # one call: the common case, and the fast one
        except asyncio.IncompleteReadError:
            raise ApiError(400, 'body ended before its Content-Length of %d bytes' % length) from None
    data = bytearray()  # chunked: count as it comes
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise ApiError(413, 'body is larger than the limit of %d bytes' % limit)
    return bytes(data)


def _check_fields(body: t.Mapping[str, t.Any], allowed: t.Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, 'unknown field%s: %s' % ('s' if len(unknown) > 1 else '', ', '.join(unknown)),
                       [{'path': key, 'message': 'unknown field (allowed: %s)' % ', '.join(sorted(allowed))} for key in unknown])


def _string_field(body: t.Mapping[str, t.Any], key: str, required: bool = False, pattern: re.Pattern[str] | None = None,
                  limit: int = MAX_FIELD, hint: str = '') -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or (pattern is not None and not pattern.match(value)):
        message = 'must be a non-empty string of at most %d characters%s' % (limit, hint)
        raise ApiError(400, '%s: %s' % (key, message), [{'path': key, 'message': message}])
    return value


def _int_query(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, '%s: must be an integer from %d to %d' % (key, low, high), [{'path': key, 'message': 'out of range'}])
    return int(raw)


def _origin(request: web.Request) -> str:
    return '%s://%s' % (request.scheme, request.host)


def _service(request: web.Request) -> JobService:
    return request.app[SERVICE_KEY]


def _job_id(request: web.Request) -> str:
    return request.match_info['job_id']


# ----------------------------------------------------------------------------------------- handlers

async def healthz(request: web.Request) -> web.Response:
    return json_response({'status': 'ok', 'long_polls': _service(request).notifier.waiting})


async def create_job(request: web.Request) -> web.Response:
    body = webhook.loads_strict(await read_body(request, MAX_JOB_BODY))
    _check_fields(body, ('server_serial', 'recipe', 'attached', 'public_url'))
    serial = _string_field(body, 'server_serial', required=True, pattern=SERIAL_PATTERN, limit=128,
                           hint=' of letters, digits and ._:- (the server serial number)')
    if 'recipe' not in body:
        raise ApiError(400, 'recipe: is required', [{'path': 'recipe', 'message': 'is required'}])
    attached = body.get('attached', [])
    if not isinstance(attached, list) or not all(isinstance(item, str) for item in attached):
        raise ApiError(400, 'attached: must be a list of payload names (%s)' % ', '.join(PAYLOAD_FILES),
                       [{'path': 'attached', 'message': 'must be a list of strings'}])
    public_url = _string_field(body, 'public_url', pattern=_URL, hint=' starting with http:// or https://')
    service = _service(request)
    job = await service.create(t.cast(str, serial), body['recipe'], attached, public_url or _origin(request))
    return json_response(service.secret_document(job), status=202, headers={hdrs.LOCATION: '/api/v1/jobs/%s' % job.job_id})


async def list_jobs(request: web.Request) -> web.Response:
    statuses: list[str] = []
    for raw in request.query.getall('status', []):
        statuses.extend(part for part in raw.split(',') if part)
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise ApiError(400, 'status: unknown value %s (use %s)' % (', '.join(unknown), ', '.join(STATUSES)),
                       [{'path': 'status', 'message': 'unknown status'}])
    active = request.query.get('active')
    if active not in (None, 'true', 'false'):
        raise ApiError(400, 'active: must be true or false', [{'path': 'active', 'message': 'must be true or false'}])
    if active == 'true':
        statuses = [status for status in (statuses or ACTIVE_STATUSES) if status in ACTIVE_STATUSES]
        if not statuses:
            return json_response({'jobs': [], 'count': 0})
    elif active == 'false':
        statuses = [status for status in (statuses or STATUSES) if status not in ACTIVE_STATUSES]
    serial = request.query.get('serial')
    if serial is not None and not SERIAL_PATTERN.match(serial):
        raise ApiError(400, 'serial: not a valid serial number', [{'path': 'serial', 'message': 'letters, digits and ._:- only'}])
    limit = _int_query(request, 'limit', 100, 1, MAX_LIST_LIMIT)
    offset = _int_query(request, 'offset', 0, 0, 2 ** 62)
    service = _service(request)
    jobs = [service.job_document(job) for job in service.list_jobs(statuses, serial, limit, offset)]
    return json_response({'jobs': jobs, 'count': len(jobs)})


async def get_job(request: web.Request) -> web.Response:
    service = _service(request)
    return json_response(service.job_document(service.get(_job_id(request)), detail=True))


async def job_events(request: web.Request) -> web.Response:
    after = _int_query(request, 'after', 0, 0, 2 ** 62)
    raw_wait = request.query.get('wait', '0')
    try:
        wait = float(raw_wait)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_LONG_POLL:
        raise ApiError(400, 'wait: seconds from 0 to %d' % MAX_LONG_POLL, [{'path': 'wait', 'message': 'out of range'}])
    service = _service(request)
    job, events = await service.events(_job_id(request), after, wait)
    return json_response({'job': service.job_document(job, detail=True), 'events': [event.as_dict() for event in events],
                          'last_seq': events[-1].seq if events else after})


async def set_status(request: web.Request) -> web.Response:
    body = webhook.loads_strict(await read_body(request, MAX_SMALL_BODY))
    _check_fields(body, ('status', 'failed_step', 'reason'))
    wanted = body.get('status')
    user_statuses = sorted({status for targets in USER_TRANSITIONS.values() for status in targets})
    if wanted not in user_statuses:
        raise ApiError(400, 'status: must be one of %s' % ', '.join(user_statuses), [{'path': 'status', 'message': 'not a status a user sets'}])
    failed_step = _string_field(body, 'failed_step', required=wanted == FAILED, pattern=webhook.STEP_PATTERN, limit=256,
                                hint=' naming what failed, e.g. redfish-boot')
    reason = _string_field(body, 'reason', limit=webhook.MAX_REASON)
    if wanted != FAILED and (failed_step or reason):
        raise ApiError(400, 'failed_step and reason go only with status failed', [{'path': 'failed_step', 'message': 'only with failed'}])
    service = _service(request)
    job, changed = await service.transition(_job_id(request), t.cast(str, wanted), failed_step, reason)
    doc = service.job_document(job, detail=True)
    doc['changed'] = changed
    return json_response(doc)


async def reissue_token(request: web.Request) -> web.Response:
    service = _service(request)
    job = await service.reissue_token(_job_id(request))
    return json_response(service.secret_document(job))


async def status_webhook(request: web.Request) -> web.Response:
    body = await read_body(request, webhook.MAX_BODY_BYTES)
    outcome = await _service(request).webhook(request.match_info['serial'], request.headers, body)
    return json_response({'job_id': outcome.job_id, 'status': outcome.status})


async def public_media(request: web.Request) -> web.StreamResponse:
    return media_response(_service(request).media_dir, public_media_path(request.match_info['path']))


async def job_media(request: web.Request) -> web.StreamResponse:
    directory = _service(request).job_media_dir_for(_job_id(request), request.match_info['key'])
    return media_response(directory, request.match_info['name'])


def build_app(api_token: str | None) -> web.Application:
    """Routes and request checks; the ``JobService`` is put under ``SERVICE_KEY`` when the app starts (``server.create_app``)."""
    app = web.Application(middlewares=[api_middleware], client_max_size=MAX_JOB_BODY)
    app[API_TOKEN_KEY] = api_token or ''
    app.router.add_get('/healthz', healthz)
    app.router.add_post('/api/v1/jobs', create_job)
    app.router.add_get('/api/v1/jobs', list_jobs)
    app.router.add_get('/api/v1/jobs/{job_id}', get_job)
    app.router.add_get('/api/v1/jobs/{job_id}/events', job_events)
    app.router.add_post('/api/v1/jobs/{job_id}/status', set_status)
    app.router.add_post('/api/v1/jobs/{job_id}/token', reissue_token)
    app.router.add_post('/api/v1/status-webhook/{serial}', status_webhook)
    app.router.add_get('/media/jobs/{job_id}/{key}/{name:.+}', job_media)
    app.router.add_get('/media/{path:.+}', public_media)
    return app
