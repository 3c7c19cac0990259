# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP: routes, request checks and error documents.  The work is done by ``JobService``.

Errors are RFC 9457 problem documents (``application/problem+json``): ``status``, ``title``,
``detail``, for invalid input ``errors`` (a list of ``{"path", "message"}``), and for every 409 a
``code`` that says which conflict it is (``duplicate_delivery`` is the one a webhook sender counts as
delivered).  A request that is refused changes nothing: every check comes before the first write.

Input is read strictly: numbers are ASCII digits of bounded length (``"²"`` passes ``str.isdigit()``
and fails ``int()``; 5,000 digits fail ``int()`` too), patterns match the whole value, and the job
API refuses text that is not valid Unicode (a lone surrogate such as JSON ``"\\ud800"``) or holds a NUL
(U+0000, which PostgreSQL text cannot hold) with 400 naming the field: a recipe is an instruction its
author can correct, whereas a node's report keeps its text with U+FFFD (``l3metal_contract.webhook.parse_body``).
A job id in a path that is not one the receiver makes is no job (404) without a database read.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import sys
import typing as t

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from l3metal_contract import webhook
from l3metal_contract.jobs import ACTIVE_STATUSES, FAILED, SERIAL_PATTERN, STATUSES, USER_TRANSITIONS
from l3metal_contract.medium import UPLOAD_NAME, UPLOAD_NAME_RULE
from l3metal_contract.recipe import RecipeError
from l3metal_contract.recipe_schema import PAYLOAD_FILES

from .committer import CommitterStopped, StorageUnavailable, storage_reason
from .logs import CLIENT_LOG, one_line
from .media import media_response, public_media_path
from .service import ContentMismatch, JobService, MediaGone, SignatureRejected, SiteKeyForbidden
from .store import (ActiveJobExists, DeliveryIdTaken, DuplicateDelivery, JobMismatch, JobNotFound, MediumConflict, NoActiveJob, OutcomeRecorded, StatusRejected,
                    TokenNotReissuable)

LOG = logging.getLogger('l3metal_receiver.api')

SERVICE_KEY: web.AppKey[JobService] = web.AppKey('service', JobService)
API_TOKEN_KEY: web.AppKey[str] = web.AppKey('api_token', str)  # empty: the job API is open
BODY_TIMEOUT_KEY: web.AppKey[float] = web.AppKey('body_timeout', float)
MAX_MEDIUM_KEY: web.AppKey[int] = web.AppKey('max_medium_bytes', int)
# The process's connection limiter (connections.ConnectionLimiter), absent under a test client: its figures in /healthz.
LIMITER_KEY: web.AppKey[t.Any] = web.AppKey('connection_limiter')
DEFAULT_BODY_TIMEOUT = 30.0        # seconds a request body may pause (nginx client_body_timeout is 60 s; nodes send 1 small packet)
RETRY_AFTER = '5'                  # seconds, on 503 (storage cannot be written now, shutting down)

MAX_JOB_BODY = 17 * 1024 * 1024    # a recipe may be 16 MiB (MAX_RECIPE_BYTES) plus the envelope
# PUT /api/v1/jobs/{id}/media/{name}: small task media, kept in the database (--max-medium-bytes); large media by URL
DEFAULT_MAX_MEDIUM = 16 * 1024 * 1024
# an uploaded medium's name: one file name, not hidden, as a per-job media URL serves it (one rule with the controller)
MEDIUM_NAME = UPLOAD_NAME
_SHA256 = re.compile(r'^[0-9a-fA-F]{64}\Z')
SHA256_HEADER = 'X-Content-SHA256'
MAX_SMALL_BODY = 16 * 1024         # status transitions
MAX_LONG_POLL = 60.0
MAX_LIST_LIMIT = 1000
MAX_FIELD = 2048
# no whitespace and no control characters (RFC 3986 has none; PostgreSQL text cannot hold a NUL)
_URL = re.compile(r'^https?://[^\s/?#\x00-\x1f\x7f]+[^\s?#\x00-\x1f\x7f]*\Z')
# Query numbers: ASCII digits only, at most as many as the upper bound has (no "²", no 5,000-digit values).
_DIGITS = re.compile(r'^[0-9]+\Z')
_SECONDS = re.compile(r'^[0-9]{1,3}(?:\.[0-9]{1,6})?\Z')
# what text the store cannot hold: a lone surrogate (not UTF-8) or a NUL (not in a PostgreSQL text column)
_UNSTORABLE = re.compile('[\ud800-\udfff\x00]')
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


class ClientGone(Exception):
    """The client closed the connection (or broke the body off) before its request was read: nothing to answer."""


class BodyTimeout(Exception):
    """The request body paused longer than the body timeout (408)."""


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None,
            **extra: t.Any) -> web.Response:
    doc: dict[str, t.Any] = {'type': 'about:blank', 'title': _TITLES.get(status, 'Error'), 'status': status, 'detail': detail}
    if errors is not None:
        doc['errors'] = errors
    doc.update(extra)
    return web.Response(status=status, body=_dumps(doc), content_type='application/problem+json', headers=headers)


_TITLES = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
           409: 'Conflict', 410: 'Gone', 413: 'Content Too Large', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable',
           500: 'Internal Server Error', 503: 'Service Unavailable'}


def _dumps(doc: t.Any) -> bytes:
    try:
        return json.dumps(doc, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    except UnicodeEncodeError:  # an error message that echoes text which is not valid Unicode: answer it with U+FFFD
        return json.dumps(webhook.scrub(doc), separators=(',', ':'), ensure_ascii=False).encode('utf-8')


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
    reason = storage_reason(exc)
    if reason is not None:
        detail = str(exc) if isinstance(exc, StorageUnavailable) else '%s: nothing was stored, retry later' % reason
        return problem(503, detail, headers={hdrs.RETRY_AFTER: RETRY_AFTER})
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
        return problem(409, str(exc), code='active_job', active_job=service_doc)
    if isinstance(exc, OutcomeRecorded):
        return problem(409, str(exc), code='outcome_recorded', job_status=exc.status)
    if isinstance(exc, StatusRejected):
        return problem(409, str(exc), code='transition_refused', job_status=exc.status)
    if isinstance(exc, DuplicateDelivery):
        return problem(409, str(exc), code=webhook.DUPLICATE_DELIVERY_CODE)
    if isinstance(exc, DeliveryIdTaken):
        return problem(409, str(exc), code='delivery_id_taken')
    if isinstance(exc, JobMismatch):
        return problem(409, str(exc), code='job_mismatch')
    if isinstance(exc, ContentMismatch):
        return problem(400, str(exc), [{'path': SHA256_HEADER, 'message': 'is not the sha256 of the body'}])
    if isinstance(exc, MediumConflict):
        return problem(409, str(exc), code=exc.code)
    if isinstance(exc, TokenNotReissuable):
        return problem(409, str(exc), code='token_not_reissuable')
    if isinstance(exc, BodyTimeout):
        response = problem(408, str(exc))
        response.force_close()
        return response
    if isinstance(exc, CommitterStopped):
        return problem(503, str(exc), headers={hdrs.RETRY_AFTER: RETRY_AFTER})
    return None


def _bearer(request: web.Request) -> str | None:
    scheme, _sep, given = request.headers.get(hdrs.AUTHORIZATION, '').partition(' ')
    return given.strip() if scheme.lower() == 'bearer' else None


def _check_api_token(request: web.Request) -> None:
    token = request.app[API_TOKEN_KEY]
    if token and request.path.startswith(USER_PATHS):
        if request.match_info.route.name in JOB_TOKEN_ROUTES:
            return  # the API token or the job's token: checked by the handler (_check_job_access), which reads the job
        header = request.headers.get(hdrs.AUTHORIZATION, '')
        given = _bearer(request)
        if given is None or not hmac.compare_digest(given.encode('utf-8', 'replace'), token.encode('utf-8')):
            raise ApiError(401, 'this endpoint needs the API token: Authorization: Bearer <token>' if not header else 'wrong API token',
                           headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="l3metal-receiver"'})


@web.middleware
async def api_middleware(request: web.Request, handler: t.Callable[[web.Request], t.Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The API token for the user endpoints, and every error as a problem document (one middleware: it runs per webhook)."""
    started = getattr(request.protocol, 'request_started', None)  # the receiver's connection handler (connections.py), not under a test client
    if started is not None:
        started()
    try:
        _check_api_token(request)
        return await handler(request)
    except ClientGone:
        response = problem(400, 'the client closed the connection before its request was read')
        response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text.strip() if exc.text and not exc.text.startswith(str(exc.status)) else '%s %s' % (request.method, request.path)
        return problem(exc.status, detail if exc.status != 404 else 'not found: %s' % request.path,
                       headers={k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW,)})
    except Exception as exc:  # pylint: disable=broad-exception-caught
        mapped = _map_error(exc)
        if mapped is None:
            LOG.exception('unexpected error on %s %s', request.method, request.path)
            return problem(500, 'internal error; see the receiver log')
        if isinstance(exc, BodyTimeout):
            # answer, then close: aiohttp would otherwise go on reading (lingering on) the body that stopped coming
            _client_warning(request, str(exc))
            await mapped.prepare(request)
            await mapped.write_eof()
            if request.transport is not None:
                request.transport.close()
        return mapped


# ----------------------------------------------------------------------------------------- request helpers

async def read_body(request: web.Request, limit: int, json_body: bool = True) -> bytes:
    """The request body, at most ``limit`` bytes, each read within the body timeout (408 when the client stalls); a JSON one
    unless ``json_body`` is false."""
    if json_body and _media_type(request) != 'application/json':
        raise ApiError(415, 'Content-Type must be application/json, got %s' % (request.headers.get(hdrs.CONTENT_TYPE) or 'none'))
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, 'body of %d bytes is larger than the limit of %d bytes' % (length, limit))
    if length == 0:
        return b''
    content = request.content
    try:
        with _Stall(request.app[BODY_TIMEOUT_KEY]) as stall:
            if length is not None and length <= 64 * 1024:
                return await content.readexactly(length)  # one call: the common case (a webhook), and the fast one
            data = bytearray()
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                stall.touch()
                data += chunk
                if len(data) > limit:
                    raise ApiError(413, 'body is larger than the limit of %d bytes' % limit)
    except asyncio.IncompleteReadError as exc:
        _client_warning(request, 'the body ended after %d of its %d bytes' % (len(exc.partial), length or 0))
        raise ClientGone() from None
    except (ConnectionError, RequestPayloadError, EOFError) as exc:
        _client_warning(request, 'the body broke off: %s' % (one_line(str(exc)) or type(exc).__name__))
        raise ClientGone() from None
    if length is not None and len(data) != length:
        _client_warning(request, 'the body ended after %d of its %d bytes' % (len(data), length))
        raise ClientGone()
    return bytes(data)


def _media_type(request: web.BaseRequest) -> str:
    """The Content-Type's media type without its parameters, read here: aiohttp's ``content_type`` goes through the stdlib's
    MIME parser, which raises ValueError (a 500) on parameters such as ``q*³=1`` (an RFC 2231 section number that is a
    digit to ``str.isdigit()`` and not to ``int()``), and parameters do not matter to the receiver."""
    return (request.headers.get(hdrs.CONTENT_TYPE) or '').split(';', 1)[0].strip().lower()


def _client_warning(request: web.BaseRequest, what: str) -> None:
    """One WARNING line for a client's fault (rate-limited: a flood of broken clients cannot flood the log)."""
    CLIENT_LOG.log(logging.WARNING, '%s %s from %s: %s', request.method, one_line(request.path, 120), request.remote, what)


class _Stall:
    """Cancel the current task when no body data arrives for ``timeout`` seconds, and raise ``BodyTimeout`` instead.

    One timer per body (``touch`` re-arms it per chunk): no per-read task as ``asyncio.wait_for`` would make.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expired = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> _Stall:
        self.touch()
        return self

    def touch(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.timeout > 0:
            self._handle = self._loop.call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired and exc_type is asyncio.CancelledError:
            if sys.version_info >= (3, 11) and self._task is not None:
                self._task.uncancel()
            raise BodyTimeout('the request body paused for more than %g s (the body timeout); closing the connection' % self.timeout)


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
    if not isinstance(value, str) or not value or len(value) > limit or (pattern is not None and not pattern.fullmatch(value)):
        message = 'must be a non-empty string of at most %d characters%s' % (limit, hint)
        raise ApiError(400, '%s: %s' % (key, message), [{'path': key, 'message': message}])
    return value


def _int_query(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        message = 'must be an integer from %d to %d (ASCII digits)' % (low, high)
        raise ApiError(400, '%s: %s' % (key, message), [{'path': key, 'message': message}])
    return int(raw)


def _text_message(found: re.Match[str]) -> str:
    if found.group() == '\x00':
        return 'contains a NUL character (U+0000) at character %d, which cannot be stored (remove it)' % found.start()
    return 'is not valid Unicode text: lone surrogate U+%04X at character %d (send UTF-8 text)' % (ord(found.group()), found.start())


def _text_problems(value: t.Any, path: str, problems: list[dict[str, str]], depth: int = 0) -> list[dict[str, str]]:
    """Every string (and key) of a JSON body that cannot be stored: a lone surrogate (not UTF-8) or a NUL (PostgreSQL text
    holds none; refused on SQLite too, so that both stores answer the same)."""
    if len(problems) >= 20 or depth > 70:
        return problems
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if found:
            problems.append({'path': path, 'message': _text_message(found)})
    elif isinstance(value, dict):
        for key, item in value.items():
            shown = webhook.storable_text(key)
            child = '%s.%s' % (path, shown) if path else shown
            found = _UNSTORABLE.search(key)
            if found:
                problems.append({'path': child, 'message': 'this key ' + _text_message(found)})
            _text_problems(item, child, problems, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _text_problems(item, '%s[%d]' % (path, index), problems, depth + 1)
    return problems


def _check_text(body: t.Any) -> None:
    problems = _text_problems(body, '', [])
    if problems:
        raise ApiError(400, 'text that cannot be stored (not valid Unicode, or a NUL): %s' % ', '.join(item['path'] for item in problems), problems)


def _origin(request: web.Request) -> str:
    return '%s://%s' % (request.scheme, request.host)


def _service(request: web.Request) -> JobService:
    return request.app[SERVICE_KEY]


def _job_id(request: web.Request) -> str:
    """The job id of the path: one the receiver could have made (its pattern), else no job (404) without a database read
    (a NUL in it would not even reach PostgreSQL as a query parameter)."""
    job_id = request.match_info['job_id']
    if not webhook.JOB_ID_PATTERN.fullmatch(job_id):
        raise JobNotFound(webhook.storable_text(job_id)[:100])
    return job_id


# ----------------------------------------------------------------------------------------- handlers

async def healthz(request: web.Request) -> web.Response:
    doc: dict[str, t.Any] = {'status': 'ok', 'long_polls': _service(request).notifier.waiting}
    limiter = request.app.get(LIMITER_KEY)
    if limiter is not None:
        doc['connections'] = limiter.stats()
    return json_response(doc)


async def create_job(request: web.Request) -> web.Response:
    body = webhook.loads_strict(await read_body(request, MAX_JOB_BODY))
    _check_text(body)
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
    if serial is not None and not SERIAL_PATTERN.fullmatch(serial):
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
    wait = float(raw_wait) if _SECONDS.fullmatch(raw_wait) else -1.0
    if not 0 <= wait <= MAX_LONG_POLL:
        raise ApiError(400, 'wait: seconds from 0 to %d (ASCII digits, e.g. 30 or 2.5)' % MAX_LONG_POLL,
                       [{'path': 'wait', 'message': 'out of range'}])
    service = _service(request)
    job, events = await service.events(_job_id(request), after, wait)
    return json_response({'job': service.job_document(job, detail=True), 'events': [event.as_dict() for event in events],
                          'last_seq': events[-1].seq if events else after})


async def set_status(request: web.Request) -> web.Response:
    body = webhook.loads_strict(await read_body(request, MAX_SMALL_BODY))
    _check_text(body)
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
    service = _service(request)
    return media_response(service.media_real, public_media_path(request.match_info['path']), exclude=service.jobs_media_real)


async def job_media(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    job_id, name = _job_id(request), request.match_info['name']
    root = service.job_media_dir_for(job_id, request.match_info['key'])
    try:
        return media_response(root, name)
    except web.HTTPNotFound:
        # uploaded over the API (to this receiver or another): written from the database into the job's directory once,
        # then served as any file there (a file of that name placed in the directory is served in preference)
        if not MEDIUM_NAME.fullmatch(name) or not await service.materialize_medium(job_id, name):
            raise
    return media_response(root, name)


def _check_job_access(request: web.Request, job_token: str) -> None:
    """The media endpoints of a job take the API token or the job's own token (what a playbook without the API token holds)."""
    api_token = request.app[API_TOKEN_KEY]
    given = _bearer(request)
    if api_token and not (given is not None and any(hmac.compare_digest(given.encode('utf-8', 'replace'), key.encode('utf-8'))
                                                    for key in (api_token, job_token))):
        raise ApiError(401, 'this endpoint needs the API token or the job\'s token: Authorization: Bearer <token>' if given is None
                       else 'wrong token (neither the API token nor the job\'s token)', headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="l3metal-receiver"'})


async def list_media(request: web.Request) -> web.Response:
    """The task media uploaded for a job (name, sha256, size, created_at, url), without their content: a client learns
    whether its medium is stored, and with which content, without writing; ``max_size`` is the upload limit."""
    service = _service(request)
    job, media = service.media(_job_id(request))
    _check_job_access(request, job.token)
    base = service.media_url(job) if job.active else None
    doc = {'job_id': job.job_id, 'job_status': job.status, 'max_size': request.app[MAX_MEDIUM_KEY], 'media_url': base,
           'media': [{'name': name, 'sha256': stored.sha256, 'size': stored.size, 'created_at': stored.created_at,
                      'url': base + name if base else None} for name, stored in media]}
    return json_response(doc)


async def put_medium(request: web.Request) -> web.Response:
    """Store a task medium of an active job (the body, any Content-Type) in the database: every receiver serves it."""
    service = _service(request)
    job_id, name = _job_id(request), request.match_info['name']
    job = service.get(job_id)
    _check_job_access(request, job.token)
    if not MEDIUM_NAME.fullmatch(name):
        message = UPLOAD_NAME_RULE
        raise ApiError(400, 'name: %s (got %s)' % (message, webhook.scrub_text(name)[:140]), [{'path': 'name', 'message': message}])
    expected = request.headers.get(SHA256_HEADER)
    if expected is not None and not _SHA256.fullmatch(expected.strip()):
        message = 'must be the 64 hexadecimal digits of the body\'s sha256'
        raise ApiError(400, '%s: %s' % (SHA256_HEADER, message), [{'path': SHA256_HEADER, 'message': message}])
    limit = request.app[MAX_MEDIUM_KEY]
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, 'body: the medium of %d bytes is larger than the limit of %d bytes (--max-medium-bytes); serve large media '
                       'by URL (docs/receiver.md)' % (length, limit), [{'path': 'body', 'message': 'larger than %d bytes' % limit}])
    content = await read_body(request, limit, json_body=False)
    job, stored, written = await service.put_medium(job_id, name, content, expected.strip() if expected else None)
    doc = {'job_id': job_id, 'name': name, 'sha256': stored.sha256, 'size': stored.size, 'created_at': stored.created_at,
           'url': service.media_url(job) + name, 'changed': written}
    return json_response(doc, status=201 if written else 200)


PUT_MEDIUM_ROUTE = 'put_medium'
LIST_MEDIA_ROUTE = 'list_media'
JOB_TOKEN_ROUTES = frozenset((PUT_MEDIUM_ROUTE, LIST_MEDIA_ROUTE))


def build_app(api_token: str | None, body_timeout: float = DEFAULT_BODY_TIMEOUT, max_medium_bytes: int = DEFAULT_MAX_MEDIUM) -> web.Application:
    """Routes and request checks; the ``JobService`` is put under ``SERVICE_KEY`` when the app starts (``server.create_app``)."""
    app = web.Application(middlewares=[api_middleware], client_max_size=MAX_JOB_BODY)
    app[API_TOKEN_KEY] = api_token or ''
    app[BODY_TIMEOUT_KEY] = float(body_timeout)
    app[MAX_MEDIUM_KEY] = int(max_medium_bytes)
    app.router.add_get('/healthz', healthz)
    app.router.add_post('/api/v1/jobs', create_job)
    app.router.add_get('/api/v1/jobs', list_jobs)
    app.router.add_get('/api/v1/jobs/{job_id}', get_job)
    app.router.add_get('/api/v1/jobs/{job_id}/events', job_events)
    app.router.add_post('/api/v1/jobs/{job_id}/status', set_status)
    app.router.add_post('/api/v1/jobs/{job_id}/token', reissue_token)
    app.router.add_get('/api/v1/jobs/{job_id}/media', list_media, name=LIST_MEDIA_ROUTE)
    app.router.add_put('/api/v1/jobs/{job_id}/media/{name}', put_medium, name=PUT_MEDIUM_ROUTE)
    app.router.add_post('/api/v1/status-webhook/{serial}', status_webhook)
    app.router.add_get('/media/jobs/{job_id}/{key}/{name:.+}', job_media)
    app.router.add_get('/media/{path:.+}', public_media)
    return app
