# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Playbook side of the webhook receiver: a client for its job API and the logic of the
``provision_job`` module and the ``provision_job_wait`` action.

Errors are ``ReceiverError`` carrying the HTTP status and the receiver's problem document; their
messages name the URL and say what to change.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import time
import typing as t
import urllib.error
import urllib.parse

from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.urls import open_url

from ._contract.medium import UPLOAD_NAME, UPLOAD_NAME_RULE
from ._contract.jobs import (ACTIVE_STATUSES, COMPLETE, OUTCOME_STATUSES, PROVISIONING, QUEUED, SERIAL_PATTERN, TransitionError, check_transition,
                             job_recipe, recipe_digest)
from ._contract.retry import RetryPolicy

MAX_LONG_POLL = 25.0


def receiver_argument_spec() -> dict[str, dict[str, t.Any]]:
    """Options of the doc fragment l3metal.provision.receiver."""
    return dict(
        url=dict(type='str', required=True, fallback=(env_fallback, ['L3METAL_RECEIVER_URL'])),
        api_token=dict(type='str', no_log=True, fallback=(env_fallback, ['L3METAL_RECEIVER_API_TOKEN'])),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        request_timeout=dict(type='float', default=30.0),
    )


def client_from_params(params: t.Mapping[str, t.Any]) -> ReceiverClient:
    return ReceiverClient(params['url'], params.get('api_token'), params['validate_certs'], params.get('ca_path'), params['request_timeout'])


class ReceiverError(Exception):
    """The receiver refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None, problem: dict[str, t.Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}

    @property
    def errors(self) -> list[dict[str, str]]:
        errors = self.problem.get('errors')
        return errors if isinstance(errors, list) else []


class TransitionRefused(ReceiverError):
    """The job's status does not allow the change asked for; ``job`` is the job as the receiver holds it now.

    A caller that raced the job's node (its report landed first) reads the outcome the node reported from ``job``
    instead of parsing the message."""

    def __init__(self, message: str, job: dict[str, t.Any], status: int | None = None, problem: dict[str, t.Any] | None = None) -> None:
        super().__init__(message, status, problem)
        self.job = job


class ReceiverClient:
    """The receiver's job API (``/api/v1/jobs``) over HTTP(S) with Ansible's ``open_url``."""

    def __init__(self, url: str, api_token: str | None = None, validate_certs: bool = True, ca_path: str | None = None,
                 timeout: float = 30.0) -> None:
        if not url.startswith(('http://', 'https://')):
            raise ReceiverError('url: %r must start with http:// or https://' % url)
        self.url = url.rstrip('/')
        self.api_token = api_token
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout

    def request(self, method: str, path: str, body: t.Any = None, query: t.Mapping[str, t.Any] | None = None,
                timeout: float | None = None, raw: t.Any = None, raw_headers: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
        """One request; ``body`` is sent as JSON, ``raw`` (bytes or an open binary file, with its headers) as it is."""
        url = self.url + path + ('?' + urllib.parse.urlencode(query) if query else '')
        headers = {'Accept': 'application/json'}
        data = raw
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        headers.update(raw_headers or {})
        if self.api_token:
            headers['Authorization'] = 'Bearer ' + self.api_token
        try:
            response = open_url(url, data=data, headers=headers, method=method, validate_certs=self.validate_certs, ca_path=self.ca_path,
                                timeout=timeout or self.timeout, follow_redirects='none')
            raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, url, exc) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts and TLS errors are OSErrors
            reason = getattr(exc, 'reason', exc)
            raise ReceiverError('cannot reach the webhook receiver at %s: %s (is it running, and is url right?)' % (url, reason)) from None
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise ReceiverError('%s %s answered something that is not JSON: %r' % (method, url, raw[:200])) from None
        if not isinstance(doc, dict):
            raise ReceiverError('%s %s answered a JSON %s, expected an object' % (method, url, type(doc).__name__))
        return doc

    def _http_error(self, method: str, url: str, exc: urllib.error.HTTPError) -> ReceiverError:
        try:
            raw = exc.read()
            problem = json.loads(raw) if raw else {}
        except (ValueError, OSError):
            problem = {}
        finally:
            exc.close()
        if not isinstance(problem, dict):
            problem = {}
        detail = problem.get('detail') or exc.reason
        if exc.code == 401:
            hint = ('set api_token (or the environment variable L3METAL_RECEIVER_API_TOKEN) to the token the receiver was started with'
                    if not self.api_token else 'api_token is not the token the receiver was started with')
            return ReceiverError('%s %s: HTTP 401: %s; %s' % (method, url, detail, hint), 401, problem)
        return ReceiverError('%s %s: HTTP %d: %s' % (method, url, exc.code, detail), exc.code, problem)

    # ------------------------------------------------------------------ endpoints

    def create_job(self, serial: str, recipe: t.Mapping[str, t.Any], attached: t.Sequence[str] = (), public_url: str | None = None) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {'server_serial': serial, 'recipe': recipe}
        if attached:
            body['attached'] = list(attached)
        if public_url:
            body['public_url'] = public_url
        return self.request('POST', '/api/v1/jobs', body)

    def get_job(self, job_id: str) -> dict[str, t.Any]:
        return self.request('GET', '/api/v1/jobs/' + urllib.parse.quote(job_id, safe=''))

    def active_job(self, serial: str) -> dict[str, t.Any] | None:
        jobs = self.request('GET', '/api/v1/jobs', query={'serial': serial, 'active': 'true', 'limit': 1}).get('jobs') or []
        return jobs[0] if jobs else None

    def set_status(self, job_id: str, status: str, failed_step: str | None = None, reason: str | None = None) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {'status': status}
        if failed_step:
            body['failed_step'] = failed_step
        if reason:
            body['reason'] = reason
        return self.request('POST', '/api/v1/jobs/%s/status' % urllib.parse.quote(job_id, safe=''), body)

    def reissue_token(self, job_id: str) -> dict[str, t.Any]:
        return self.request('POST', '/api/v1/jobs/%s/token' % urllib.parse.quote(job_id, safe=''), {})

    def events(self, job_id: str, after: int = 0, wait: float = 0) -> dict[str, t.Any]:
        # The receiver reads at most 6 decimals (receiver/l3metal_receiver/api.py, _SECONDS); '%g' wrote a last round's 0.0270894 s (7) or 1e-05
        # and was answered 400, failing the wait at its deadline instead of ending it. Milliseconds are precise enough.
        query = {'after': after, 'wait': '%.3f' % wait}
        return self.request('GET', '/api/v1/jobs/%s/events' % urllib.parse.quote(job_id, safe=''), query=query, timeout=self.timeout + wait)

    def list_media(self, job_id: str) -> dict[str, t.Any]:
        """The job's uploaded media without content: ``{job_id, job_status, max_size, media_url, media: [{name, sha256, size, created_at, url}]}``."""
        return self.request('GET', '/api/v1/jobs/%s/media' % urllib.parse.quote(job_id, safe=''))

    def upload_medium(self, job_id: str, name: str, path: str, sha256: str | None = None) -> dict[str, t.Any]:
        """PUT the file ``path`` as the job's medium ``name``, streamed from disk (``http.client`` sends an open file in
        blocks when Content-Length is given), with its sha256 for the receiver to check."""
        digest = sha256 or file_sha256(path)
        with open(path, 'rb') as handle:
            size = os.fstat(handle.fileno()).st_size
            headers = {'Content-Type': 'application/octet-stream', 'Content-Length': str(size), 'X-Content-SHA256': digest}
            return self.request('PUT', '/api/v1/jobs/%s/media/%s' % (urllib.parse.quote(job_id, safe=''), urllib.parse.quote(name, safe='')),
                                raw=handle, raw_headers=headers)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# provision_job

SECRET_KEYS = ('token', 'callback', 'recipe')


class JobResult(t.NamedTuple):
    changed: bool
    job: dict[str, t.Any] | None        # the job document (no secrets); None in check mode before creation
    secrets: dict[str, t.Any] | None    # token, callback and the recipe with callback, when made by this call
    created: bool
    replaced: dict[str, t.Any] | None   # the job completed to make room (force), as it was before


def check_serial(serial: str) -> str:
    if not SERIAL_PATTERN.match(serial or ''):
        raise ReceiverError('server_serial: %r is not a serial number (1 to 128 letters, digits and ._:-)' % serial)
    return serial


def _public(doc: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: value for key, value in doc.items() if key not in SECRET_KEYS}


def _secrets(doc: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: doc[key] for key in SECRET_KEYS}


# Two controllers registering the same serial at once: the loser re-reads the active job after a short pause.
REGISTER_RACE = RetryPolicy(attempts=3, backoff=0.2, max_delay=1.0)


def ensure_job(client: ReceiverClient, serial: str, recipe_source: t.Any, attached: t.Sequence[str] = (), public_url: str | None = None,
               reissue_token: bool = False, force: bool = False, check_mode: bool = False) -> JobResult:
    """Make sure ``serial`` has an active job with this recipe; create it (token returned once) when not.

    An active job with an equivalent recipe is kept (``changed=False``, no token: it was returned when
    the job was created).  ``reissue_token`` replaces the token of a still queued job and returns the
    new one.  An active job with another recipe is an error unless ``force``, which completes it first.
    """
    check_serial(serial)
    recipe = job_recipe(recipe_source, attached)  # RecipeError before anything is sent
    digest = recipe_digest(recipe)
    for attempt in range(REGISTER_RACE.attempts):
        active = client.active_job(serial)
        replaced = None
        if active is not None and active.get('recipe_sha256') == digest:
            if not reissue_token:
                return JobResult(False, active, None, False, None)
            if active.get('status') != QUEUED:
                raise ReceiverError('job %s of serial %s is %s: its node may already hold the token, so it cannot be reissued; '
                                    'wait for the job or mark it complete (state=complete) and register again'
                                    % (active.get('job_id'), serial, active.get('status')))
            if check_mode:
                return JobResult(True, active, None, False, None)
            doc = client.reissue_token(active['job_id'])
            return JobResult(True, _public(doc), _secrets(doc), False, None)
        if active is not None:
            if not force:
                raise ReceiverError('serial %s already has an active job %s (%s) with a different recipe; mark it complete '
                                    '(state=complete) or set force=true to complete it and create a new job'
                                    % (serial, active.get('job_id'), active.get('status')))
            replaced = active
            if not check_mode:
                client.set_status(active['job_id'], COMPLETE)
        if check_mode:
            return JobResult(True, None, None, True, replaced)
        try:
            doc = client.create_job(serial, recipe, attached, public_url)
        except ReceiverError as exc:
            if exc.status == 409 and 'active_job' in exc.problem:
                if REGISTER_RACE.should_retry(attempt):
                    REGISTER_RACE.wait(attempt)  # another run created one in between: let it finish, then decide again
                continue
            raise
        return JobResult(True, _public(doc), _secrets(doc), True, replaced)
    raise ReceiverError('serial %s: the active job kept changing while registering; try again' % serial)


def ensure_status(client: ReceiverClient, wanted: str, job_id: str | None = None, serial: str | None = None, failed_step: str | None = None,
                  reason: str | None = None, check_mode: bool = False) -> tuple[bool, dict[str, t.Any] | None, dict[str, t.Any] | None]:
    """Move a job (by id, or the serial's active job) to ``wanted`` as a user; (changed, job before, job after)."""
    if job_id:
        current = client.get_job(job_id)
    else:
        found = client.active_job(check_serial(serial or ''))
        if found is None:
            if wanted == COMPLETE:
                return False, None, None  # nothing active to complete
            raise ReceiverError('serial %s has no active job to mark %s; register one with state=present first' % (serial, wanted))
        current = found
    if wanted == PROVISIONING and current.get('status') in OUTCOME_STATUSES:
        # The node booted and reported its outcome before the playbook marked the job provisioning (a fast node, a slow
        # controller): the job is already past what this marks, which is no error and changes nothing.
        return False, current, current
    try:
        changed = check_transition(str(current.get('status')), wanted, 'user')
    except TransitionError as exc:
        raise TransitionRefused('job %s: %s' % (current.get('job_id'), exc), current) from None
    if not changed:
        return False, current, current
    if check_mode:
        return True, current, dict(current, status=wanted)
    try:
        after = client.set_status(current['job_id'], wanted, failed_step, reason)
    except ReceiverError as exc:
        if exc.status != 409 or exc.problem.get('code') != 'transition_refused':
            raise
        # The job moved on between the read above and this change (the node's report landed in between): say where it is.
        try:
            now = client.get_job(current['job_id'])
        except ReceiverError:
            raise exc from None
        raise TransitionRefused(str(exc), now, exc.status, exc.problem) from None
    after.pop('changed', None)
    return True, current, after


# ---------------------------------------------------------------------------------------------------
# provision_job_wait

def describe_event(event: t.Mapping[str, t.Any]) -> str:
    if event.get('type') == 'progress':
        return '%s %s' % (event.get('step'), event.get('state'))
    return 'status %s (%s)' % (event.get('status'), 'node' if event.get('source') == 'node' else 'controller')


def event_time(event: t.Mapping[str, t.Any]) -> float | None:
    """The receiver's time stamp of an event (``at``, ISO 8601 UTC) in seconds since the epoch; None when it has none."""
    try:
        return datetime.datetime.fromisoformat(str(event['at']).replace('Z', '+00:00')).timestamp()
    except (KeyError, ValueError):
        return None


class StepClock:
    """Each step's duration, from the node's ``started`` and ``done`` reports (the receiver's time stamps): ``describe``
    adds it to a finished step, and to a failure the step it interrupted (``image-linux.service started`` and then
    ``status failed``)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def describe(self, event: t.Mapping[str, t.Any]) -> str:
        text = describe_event(event)
        at = event_time(event)
        if at is None:
            return text
        if event.get('type') == 'progress':
            step = str(event.get('step'))
            if event.get('state') == 'started':
                self.started[step] = at
            elif event.get('state') == 'done' and step in self.started:
                text += ' (%.1f s)' % (at - self.started.pop(step))
        elif event.get('status') == 'failed' and self.started:
            step, since = list(self.started.items())[-1]
            text += ' (%s ran %.1f s)' % (step, at - since)
        return text


class WaitResult(t.NamedTuple):
    job: dict[str, t.Any]
    events: list[dict[str, t.Any]]
    reached: bool
    elapsed: float


def wait_for_job(client: ReceiverClient, job_id: str, until: t.Collection[str], timeout: float,
                 on_event: t.Callable[[dict[str, t.Any]], None] | None = None, clock: t.Callable[[], float] = time.monotonic) -> WaitResult:
    """Follow a job's events (long polls) until its status is one of ``until`` or ``timeout`` seconds pass."""
    start = clock()
    after = 0
    seen: list[dict[str, t.Any]] = []
    while True:
        remaining = timeout - (clock() - start)
        doc = client.events(job_id, after, wait=max(0.0, min(MAX_LONG_POLL, remaining)))
        for event in doc.get('events') or []:
            seen.append(event)
            if on_event is not None:
                on_event(event)
        after = int(doc.get('last_seq') or after)
        job = doc.get('job') or {}
        status = job.get('status')
        if status in until:
            return WaitResult(job, seen, True, clock() - start)
        if status not in ACTIVE_STATUSES:
            # complete and not wanted: it can never get there
            return WaitResult(job, seen, False, clock() - start)
        if clock() - start >= timeout:
            return WaitResult(job, seen, False, clock() - start)


# ---------------------------------------------------------------------------------------------------
# provision_job_media

class MediumResult(t.NamedTuple):
    changed: bool
    sha256: str
    size: int
    url: str | None         # where the BMC downloads it: the job's media URL + name
    created_at: str | None  # when the receiver stored it; None in check mode before the upload


def _media_problem(exc: ReceiverError, job_id: str, name: str, src: str) -> ReceiverError:
    """The receiver's refusal in the words of the module's options."""
    code = exc.problem.get('code')
    if exc.status == 404:
        return ReceiverError('job_id: the receiver has no job %s (%s)' % (job_id, exc), 404, exc.problem)
    if exc.status == 409 and code == 'job_complete':
        return ReceiverError('job_id: job %s is complete and takes no more media; register a new job (provision_job)' % job_id, 409, exc.problem)
    if exc.status == 409 and code == 'medium_exists':
        return ReceiverError('name: job %s already holds a medium %s with other content; a stored medium is written once: give another name, '
                             'or register a new job (%s)' % (job_id, name, exc.problem.get('detail') or exc), 409, exc.problem)
    if exc.status == 413:
        return ReceiverError('src: %s is larger than the receiver takes (%s); serve large media by URL (docs/receiver.md)' % (src, exc), 413, exc.problem)
    return exc


def job_media(client: ReceiverClient, job_id: str) -> dict[str, t.Any]:
    """The receiver's list of the job's uploaded media (``ReceiverClient.list_media``), its refusals naming ``job_id``."""
    if not job_id:
        raise ReceiverError('job_id: must be the id of an active job (provision_job returns it)')
    try:
        return client.list_media(job_id)
    except ReceiverError as exc:
        raise _media_problem(exc, job_id, '', '') from None


def ensure_medium(client: ReceiverClient, job_id: str, name: str, src: str, check_mode: bool = False) -> MediumResult:
    """Make sure job ``job_id`` holds the file ``src`` as its medium ``name``: upload it unless that content is stored.

    Reads first (``GET .../media``) so that check mode and a re-run send nothing, and so that a refusal the upload
    would get (other content under that name, a complete job, a file over the limit) is told before any byte is sent.
    """
    if not job_id:
        raise ReceiverError('job_id: must be the id of an active job (provision_job returns it)')
    if not UPLOAD_NAME.match(name or ''):
        raise ReceiverError('name: %r %s' % (name, UPLOAD_NAME_RULE))
    try:
        size = os.stat(src).st_size
        if not os.path.isfile(src):
            raise ReceiverError('src: %s is not a regular file' % src)
        digest = file_sha256(src)
    except OSError as exc:
        raise ReceiverError('src: cannot read %s: %s' % (src, exc.strerror or exc)) from None
    listing = job_media(client, job_id)
    if listing.get('job_status') == COMPLETE:
        raise ReceiverError('job_id: job %s is complete and takes no more media; register a new job (provision_job)' % job_id, 409)
    stored = next((item for item in listing.get('media') or [] if item.get('name') == name), None)
    if stored is not None:
        if stored.get('sha256') == digest:
            return MediumResult(False, digest, size, stored.get('url'), stored.get('created_at'))
        raise ReceiverError('name: job %s already holds a medium %s with other content (sha256 %s, src has %s); a stored medium is written once: '
                            'give another name, or register a new job' % (job_id, name, stored.get('sha256'), digest), 409)
    limit = listing.get('max_size')
    if isinstance(limit, int) and size > limit:
        raise ReceiverError('src: %s is %d bytes, larger than the receiver takes (%d bytes, its --max-medium-bytes); serve large media by URL '
                            '(docs/receiver.md)' % (src, size, limit), 413)
    url = listing['media_url'] + name if listing.get('media_url') else None
    if check_mode:
        return MediumResult(True, digest, size, url, None)
    try:
        doc = client.upload_medium(job_id, name, src, digest)
    except ReceiverError as exc:
        raise _media_problem(exc, job_id, name, src) from None
    return MediumResult(bool(doc.get('changed')), str(doc.get('sha256') or digest), int(doc.get('size') or size), doc.get('url') or url, doc.get('created_at'))
