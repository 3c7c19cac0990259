# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Signed status webhooks: the contract between the maintenance OS and the webhook receiver.

Standard library only (with ``retry.py`` of this package): the node-side dispatcher, the systemd
units that report a failed step, the receiver and the modules all use this one file.

Signing (documented for any client in docs/webhooks.md)::

    X-L3metal-Timestamp: <unix seconds>
    X-L3metal-Delivery:  <delivery id: 8-64 characters of [A-Za-z0-9_-], unique per event>
    X-L3metal-Signature: v1=<hex HMAC-SHA256(key=job token, msg=signed string)>

    signed string = "v1:" + timestamp + ":" + delivery id + ":" + raw request body bytes

A node that has no per-job token yet (no task medium, a recipe.json that does not parse) may report
that one failure with the site's node key instead (see docs/webhooks.md, "Site key")::

    X-L3metal-Key-Id: site
    key = site_signing_key(<site node key>, <serial>)      # HMAC-SHA256(site key, "l3metal-site-report:v1:" + serial)

and the receiver accepts nothing else signed that way (``site_key_allows``).

The receiver rejects a missing or wrong signature (401), a timestamp more than ``MAX_SKEW`` seconds
away from its clock, and a delivery id it has already accepted (409) - all without changing state.
A sender retrying one event keeps its delivery id (new timestamp and signature per attempt), so a
retry of an event whose first answer was lost is answered 409 with the problem code
``duplicate_delivery`` and counts as delivered.  Any other 409 (the outcome is already recorded, the
job refuses the transition, another job is active) is a refusal: the sender never counts an answer
as a delivery that does not confirm one (``WebhookSender.send``).

Text that is not valid Unicode (a lone surrogate: what Python makes of journal, firmware or BIOS
bytes that are not UTF-8) is replaced with U+FFFD on both sides (``scrub_text``): the sender encodes
nothing the receiver would have to guess about, and the receiver stores a failure report rather than
losing it for one bad byte of its log tail.  The receiver also replaces a NUL (U+0000) in ``reason`` and
``log_tail`` (``storable_text``: PostgreSQL text cannot hold one).

Bodies (JSON objects)::

    {"status": "success"}
    {"status": "failed", "failed_step": "bootloader-linux.service", "reason": "...", "log_tail": "..."}
    {"status": "progress", "step": "partition.service", "state": "started" | "done"}

``job_id`` may be added to any body; the receiver then checks it is the serial's active job.
``parse_body`` is the strict reading of these bodies the receiver applies (unknown fields, wrong
types and oversized values are refused).  ``main`` is a small command line for systemd units::

    ExecStart=/usr/bin/python3 -m l3metal_contract.webhook --url https://ctl:8443 --serial XF-1 --token-file /run/provision/token failed --step %n
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import re
import ssl
import sys
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .retry import RetryPolicy, parse_retry_after

SIGNATURE_HEADER = 'X-L3metal-Signature'
TIMESTAMP_HEADER = 'X-L3metal-Timestamp'
DELIVERY_HEADER = 'X-L3metal-Delivery'
# Which key signed: absent (or "job") = the job's token; "site" = the site node key, derived per serial.
KEY_ID_HEADER = 'X-L3metal-Key-Id'
JOB_KEY_ID = 'job'
SITE_KEY_ID = 'site'
# The only report a site key may make: the dispatcher failed before it had a per-job token.
SITE_KEY_STEP = 'provision-dispatcher.service'
MIN_SITE_KEY_LENGTH = 32
_SITE_KEY_CONTEXT = b'l3metal-site-report:v1:'
SIGNATURE_VERSION = 'v1'
MAX_SKEW = 300
# Anchored with \Z, not "$" (which also matches before a trailing newline), and applied with fullmatch().
DELIVERY_ID_PATTERN = re.compile(r'^[A-Za-z0-9_-]{8,64}\Z')
# The recipe schema's callback.job_id (checked equal by a unit test; this file cannot import the schema's jsonschema users).
JOB_ID_PATTERN = re.compile(r'^[A-Za-z0-9._-]{1,64}\Z')
# Unix seconds: ASCII digits only (str.isdigit() also accepts "²", which int() refuses), at most 12 of them.
TIMESTAMP_PATTERN = re.compile(r'^[0-9]{1,12}\Z')
WEBHOOK_PATH = '/api/v1/status-webhook/'

STATUSES = ('success', 'failed', 'progress')
PROGRESS_STATES = ('started', 'done')

# Limits the receiver enforces (parse_body); a sender trims log_tail to its end to stay within them.
MAX_BODY_BYTES = 128 * 1024
MAX_LOG_TAIL = 64 * 1024
MAX_REASON = 2048
# A step is a systemd unit name (or another short name such as "preflight").
STEP_PATTERN = re.compile(r'^[A-Za-z0-9:_.@\\-]{1,256}\Z')
# The problem-document code of the one 409 that means "this event is stored": a retry of a delivery id already accepted.
DUPLICATE_DELIVERY_CODE = 'duplicate_delivery'
_SURROGATES = re.compile('[\ud800-\udfff]')
_BODY_FIELDS = {
    'success': {'status', 'job_id'},
    'failed': {'status', 'job_id', 'failed_step', 'reason', 'log_tail'},
    'progress': {'status', 'job_id', 'step', 'state'},
}


class SignatureError(Exception):
    """A webhook's signature headers are missing, malformed, wrong, stale or replayed."""


class BodyError(Exception):
    """A webhook body is not one of the documented forms; ``problems`` lists every reason."""

    def __init__(self, problems: t.Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__('; '.join(self.problems))


class WebhookDeliveryError(Exception):
    """A webhook could not be delivered; ``status`` is the last HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def scrub_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (the replacement character).

    A Python str holds a surrogate only when it did not come from valid Unicode: JSON's ``"\\ud800"``,
    or bytes that are not UTF-8 decoded with ``surrogateescape`` (the C locale's stdin, ``sys.argv``,
    ``os.environ``).  Such text cannot be encoded as UTF-8; each surrogate is one bad byte or code unit,
    so each becomes one U+FFFD, as ``bytes.decode('utf-8', 'replace')`` does for a bad byte.
    """
    return _SURROGATES.sub('\ufffd', text) if _SURROGATES.search(text) else text


def storable_text(text: str) -> str:
    """A node's free text (``reason``, ``log_tail``) as the receiver stores it: ``scrub_text``, and every NUL (U+0000)
    replaced by U+FFFD too.

    A NUL is valid Unicode (JSON ``"\\u0000"``) but PostgreSQL's ``text`` cannot hold it, and SQLite can: replaced here,
    once, before either store, so both keep the same report; a NUL in a journal line is one bad byte, as a surrogate is.
    """
    text = scrub_text(text)
    return text.replace('\x00', '\ufffd') if '\x00' in text else text


def scrub(value: t.Any) -> t.Any:
    """``value`` (JSON data) with ``scrub_text`` applied to every string, keys included."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub_text(key) if isinstance(key, str) else key: scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def signed_string(timestamp: str, delivery_id: str, body: bytes) -> bytes:
    return ('%s:%s:%s:' % (SIGNATURE_VERSION, timestamp, delivery_id)).encode('ascii') + body


def compute_signature(token: str, timestamp: str, delivery_id: str, body: bytes) -> str:
    digest = hmac.new(token.encode('utf-8'), signed_string(timestamp, delivery_id, body), hashlib.sha256).hexdigest()
    return '%s=%s' % (SIGNATURE_VERSION, digest)


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def sign(token: str, body: bytes, delivery_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """Headers that authenticate ``body`` with the job's ``token``."""
    delivery_id = delivery_id or new_delivery_id()
    if not DELIVERY_ID_PATTERN.fullmatch(delivery_id):
        raise ValueError('delivery id %r must be 8-64 characters of A-Z, a-z, 0-9, _ and -' % delivery_id)
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {
        TIMESTAMP_HEADER: stamp,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: compute_signature(token, stamp, delivery_id, body),
    }


def _header(headers: t.Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP headers are not
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def verify(token: str, body: bytes, headers: t.Mapping[str, str], now: float | None = None, max_skew: int = MAX_SKEW) -> tuple[str, int]:
    """Check the signature headers of a webhook; return (delivery id, timestamp) or raise ``SignatureError``.

    Replay of a delivery id is the receiver's check (it needs storage); this checks everything else.
    """
    stamp = _header(headers, TIMESTAMP_HEADER)
    delivery_id = _header(headers, DELIVERY_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not stamp or not delivery_id or not signature:
        missing = [name for name, value in ((TIMESTAMP_HEADER, stamp), (DELIVERY_HEADER, delivery_id), (SIGNATURE_HEADER, signature)) if not value]
        raise SignatureError('missing header%s: %s' % ('s' if len(missing) > 1 else '', ', '.join(missing)))
    if not TIMESTAMP_PATTERN.fullmatch(stamp):
        raise SignatureError('%s must be unix seconds (1-12 ASCII digits)' % TIMESTAMP_HEADER)
    if not DELIVERY_ID_PATTERN.fullmatch(delivery_id):
        raise SignatureError('%s must be 8-64 characters of A-Z, a-z, 0-9, _ and -' % DELIVERY_HEADER)
    expected = compute_signature(token, stamp, delivery_id, body)
    if not hmac.compare_digest(expected.encode('ascii'), signature.strip().encode('utf-8', 'replace')):
        raise SignatureError('signature does not match (wrong token, or the body was changed)')
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > max_skew:
        raise SignatureError('timestamp is %d s away from the receiver clock (more than %d s)' % (abs(current - int(stamp)), max_skew))
    return delivery_id, int(stamp)


def key_id(headers: t.Mapping[str, str]) -> str:
    """``job`` or ``site``: which key the sender signed with (``X-L3metal-Key-Id``); ``SignatureError`` for others."""
    value = (_header(headers, KEY_ID_HEADER) or JOB_KEY_ID).strip().lower()
    if value not in (JOB_KEY_ID, SITE_KEY_ID):
        raise SignatureError('%s must be %s or %s' % (KEY_ID_HEADER, JOB_KEY_ID, SITE_KEY_ID))
    return value


def site_signing_key(site_key: str, serial: str) -> str:
    """The key a site-key report for ``serial`` is signed with: bound to the serial, so a captured report
    cannot be replayed against another server."""
    return hmac.new(site_key.encode('utf-8'), _SITE_KEY_CONTEXT + serial.encode('utf-8'), hashlib.sha256).hexdigest()


def site_key_allows(body: t.Mapping[str, t.Any]) -> bool:
    """A site key may only report ``failed`` at ``provision-dispatcher.service``: never progress or success."""
    return body.get('status') == 'failed' and body.get('failed_step') == SITE_KEY_STEP


def parse_site_keys(text: str, where: str = 'node key file') -> list[str]:
    """The keys of a node key file: one per line (several while a key is being replaced), ``#`` comments."""
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith('#')]
    if not keys:
        raise ValueError('%s holds no key' % where)
    short = [index + 1 for index, key in enumerate(keys) if len(key) < MIN_SITE_KEY_LENGTH]
    if short:
        raise ValueError('%s: key %s is shorter than %d characters; make one with: openssl rand -hex 32'
                         % (where, ', '.join(map(str, short)), MIN_SITE_KEY_LENGTH))
    return keys


# ---------------------------------------------------------------------------------------------------
# bodies


def success_body(job_id: str | None = None) -> dict[str, t.Any]:
    return _with_job({'status': 'success'}, job_id)


def failed_body(step: str, reason: str | None = None, log_tail: str | None = None, job_id: str | None = None) -> dict[str, t.Any]:
    body: dict[str, t.Any] = {'status': 'failed', 'failed_step': step}
    if reason:
        # the receiver refuses a longer reason (a recipe with many problems can produce one): keep its start
        body['reason'] = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + '...'
    if log_tail:
        body['log_tail'] = log_tail
    return _with_job(body, job_id)


def progress_body(step: str, state: str, job_id: str | None = None) -> dict[str, t.Any]:
    if state not in PROGRESS_STATES:
        raise ValueError('progress state must be one of %s' % ', '.join(PROGRESS_STATES))
    return _with_job({'status': 'progress', 'step': step, 'state': state}, job_id)


def _with_job(body: dict[str, t.Any], job_id: str | None) -> dict[str, t.Any]:
    if job_id:
        body['job_id'] = job_id
    return body


def encode_body(body: t.Mapping[str, t.Any]) -> bytes:
    """The bytes a sender signs and posts: compact JSON, ASCII, text that is not valid Unicode replaced (``scrub``)."""
    return json.dumps(scrub(dict(body)), separators=(',', ':'), sort_keys=True).encode('ascii')


def trim_log_tail(text: str, limit: int = MAX_LOG_TAIL) -> str:
    """The end of ``text`` whose JSON encoding fits ``limit`` bytes (whole lines where possible).

    Measured encoded, because ``encode_body`` escapes non-ASCII characters (up to 12 bytes each).
    """
    if len(json.dumps(text)) <= limit:
        return text
    tail = text[-limit:]
    while len(json.dumps(tail)) > limit:
        tail = tail[max(1, (len(json.dumps(tail)) - limit) // 12):]
    newline = tail.find('\n')
    return tail[newline + 1:] if 0 <= newline < len(tail) - 1 else tail


def _strict_object(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    result: dict[str, t.Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError('duplicate key %r' % key)
        result[key] = value
    return result


def _no_constant(name: str) -> t.Any:
    raise ValueError('%s is not valid JSON' % name)


def loads_strict(data: bytes) -> dict[str, t.Any]:
    """Parse a JSON object strictly (UTF-8, no duplicate keys, no NaN/Infinity) or raise ``BodyError``."""
    try:
        body = json.loads(data.decode('utf-8'), object_pairs_hook=_strict_object, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise BodyError(['body is not UTF-8 (byte %d)' % exc.start]) from None
    except RecursionError:
        raise BodyError(['body is nested too deeply']) from None
    except ValueError as exc:
        raise BodyError(['body is not valid JSON: %s' % exc]) from None
    if not isinstance(body, dict):
        raise BodyError(['body must be a JSON object, got %s' % _json_type(body)])
    return body


def parse_body(data: bytes) -> dict[str, t.Any]:
    """Read a webhook body strictly; return it as a dict or raise ``BodyError`` naming every problem."""
    if len(data) > MAX_BODY_BYTES:
        raise BodyError(['body is larger than %d bytes' % MAX_BODY_BYTES])
    body = loads_strict(data)
    status = body.get('status')
    if status not in STATUSES:
        raise BodyError(['status: must be one of %s, got %s' % (', '.join(STATUSES), _short_repr(status))])
    problems = ['%s: unknown field for status %s' % (key, status) for key in sorted(set(body) - _BODY_FIELDS[status])]
    if 'job_id' in body and not (isinstance(body['job_id'], str) and JOB_ID_PATTERN.fullmatch(body['job_id'])):
        problems.append('job_id: must be 1-64 characters of A-Z a-z 0-9 . _ - (the recipe\'s callback.job_id)')
    if status == 'failed':
        if not _string(body.get('failed_step'), 256) or not STEP_PATTERN.fullmatch(body['failed_step']):
            problems.append('failed_step: must be a unit name such as bootloader-linux.service (letters, digits, :_.@\\-)')
        if 'reason' in body and not _string(body['reason'], MAX_REASON, allow_empty=True):
            problems.append('reason: must be a string of at most %d characters' % MAX_REASON)
        if 'log_tail' in body and not _string(body['log_tail'], MAX_LOG_TAIL, allow_empty=True):
            problems.append('log_tail: must be a string of at most %d characters' % MAX_LOG_TAIL)
    elif status == 'progress':
        if not _string(body.get('step'), 256) or not STEP_PATTERN.fullmatch(body['step']):
            problems.append('step: must be a unit name such as partition.service (letters, digits, :_.@\\-)')
        if body.get('state') not in PROGRESS_STATES:
            problems.append('state: must be one of %s, got %s' % (', '.join(PROGRESS_STATES), _short_repr(body.get('state'))))
    if problems:
        raise BodyError(problems)
    # A report is not refused for text that is not valid Unicode or holds a NUL (its failure would be lost for a byte
    # of journal): the free-text fields are kept with U+FFFD in place of each bad code unit and each NUL.
    for key in ('reason', 'log_tail'):
        if key in body:
            body[key] = storable_text(body[key])
    return body


def _string(value: t.Any, limit: int, allow_empty: bool = False) -> bool:
    return isinstance(value, str) and (allow_empty or bool(value)) and len(value) <= limit


def _json_type(value: t.Any) -> str:
    names = {dict: 'object', list: 'array', str: 'string', bool: 'boolean', int: 'number', float: 'number', type(None): 'null'}
    return names.get(type(value), type(value).__name__)


def _short_repr(value: t.Any) -> str:
    """A short, ASCII rendering of a value for an error message (never echoes text that cannot be encoded)."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + '...'


# ---------------------------------------------------------------------------------------------------
# sender


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would turn the POST into a GET without the body (301/302/303) and report
    the answer to that GET, a page that is not the receiver's acknowledgement."""

    def redirect_request(self, req: urllib.request.Request, fp: t.Any, code: int, msg: str, headers: t.Any, newurl: str) -> None:
        return None


class WebhookSender:
    """Send signed webhooks for one job, retrying with exponential backoff and jitter.

    Retries on connection errors, timeouts, 408, 429 and 5xx, up to ``attempts`` tries, waiting as the
    shared ``retry.RetryPolicy`` says (``Retry-After`` honoured), always with the same delivery id.

    A delivery counts only when the receiver confirms it: a 2xx whose body is the receiver's
    acknowledgement (a JSON object with the job's ``job_id`` and ``status``), or a 409 whose problem
    document has the code ``duplicate_delivery`` (an earlier attempt of this delivery id is stored; its
    answer was lost).  Any other 409 (outcome already recorded, transition refused, another active job),
    any other 4xx, a redirect, or a 2xx that is not an acknowledgement is final and raises
    ``WebhookDeliveryError`` with that status.  Safe to use from a systemd unit: no state, no threads.
    """

    def __init__(self, base_url: str, serial: str, token: str, job_id: str | None = None, timeout: float = 10.0,
                 attempts: int = 8, backoff: float = 1.0, max_backoff: float = 30.0, ca_file: str | None = None,
                 validate_certs: bool = True, sleep: t.Callable[[float], None] = time.sleep, key_id: str | None = None) -> None:
        if not re.match(r'https?://', base_url or ''):
            raise ValueError('callback url %r must start with http:// or https://' % base_url)
        self.url = base_url.rstrip('/') + WEBHOOK_PATH + urllib.parse.quote(serial, safe='')
        self.token = token
        self.job_id = job_id
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.retry = RetryPolicy(attempts=self.attempts, backoff=backoff, max_delay=max_backoff, sleep=sleep)
        self.key_id = key_id  # SITE_KEY_ID when ``token`` is site_signing_key(...)
        context = ssl.create_default_context(cafile=ca_file)
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        # An opener with this TLS context. Ansible's open_url is not an option: this file runs on nodes without Ansible.
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects())

    def send(self, body: t.Mapping[str, t.Any], delivery_id: str | None = None) -> int:
        """POST ``body``; return the final HTTP status: 2xx (stored now), or 409 (this delivery id was stored before)."""
        payload = dict(body)
        if self.job_id and 'job_id' not in payload:
            payload['job_id'] = self.job_id
        data = encode_body(payload)
        delivery_id = delivery_id or new_delivery_id()
        last_error = 'no attempt made'
        last_status: int | None = None
        for attempt in range(self.attempts):
            retry_after = None
            headers = dict(sign(self.token, data, delivery_id), **{'Content-Type': 'application/json'})
            if self.key_id:
                headers[KEY_ID_HEADER] = self.key_id
            request = urllib.request.Request(self.url, data=data, headers=headers, method='POST')
            try:
                with self.opener.open(request, timeout=self.timeout) as response:
                    status = int(response.status)
                    answer = response.read(64 * 1024)
                if not self._acknowledged(answer):
                    raise WebhookDeliveryError('HTTP %d from %s is not the receiver\'s acknowledgement (a JSON object with job_id and status%s): %s'
                                               % (status, self.url, ' %s' % self.job_id if self.job_id else '', _excerpt(answer)), status)
                return status
            except urllib.error.HTTPError as exc:
                last_status = exc.code
                with exc:
                    detail = exc.read(4096)
                last_error = 'HTTP %d from %s: %s' % (exc.code, self.url, _problem_detail(detail))
                if exc.code == 409:
                    if _problem_code(detail) == DUPLICATE_DELIVERY_CODE:
                        return 409
                    raise WebhookDeliveryError('the receiver did not take it (%s)' % last_error, exc.code) from None
                if 300 <= exc.code < 400:
                    raise WebhookDeliveryError('%s redirects to %s: not followed (a POST cannot be redirected safely); use the receiver\'s own URL'
                                               % (self.url, exc.headers.get('Location') if exc.headers else '?'), exc.code) from None
                if exc.code < 500 and exc.code not in (408, 429):
                    raise WebhookDeliveryError(last_error, exc.code) from None
                retry_after = exc.headers.get('Retry-After') if exc.headers else None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                # no answer, or the answer broke off: unknown whether it was stored; the retry's 409 will tell
                last_error = 'cannot reach %s: %s' % (self.url, getattr(exc, 'reason', None) or exc)
                last_status = None
            if self.retry.should_retry(attempt):
                self.retry.wait(attempt, parse_retry_after(retry_after))
        raise WebhookDeliveryError('gave up after %d attempts: %s' % (self.attempts, last_error), last_status)

    def _acknowledged(self, answer: bytes) -> bool:
        try:
            doc = json.loads(answer.decode('utf-8'))
        except ValueError:
            return False
        return isinstance(doc, dict) and isinstance(doc.get('status'), str) and isinstance(doc.get('job_id'), str) and \
            (not self.job_id or doc['job_id'] == self.job_id)


def _problem(detail: bytes) -> dict[str, t.Any]:
    try:
        doc = json.loads(detail.decode('utf-8'))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _problem_code(detail: bytes) -> str | None:
    code = _problem(detail).get('code')
    return code if isinstance(code, str) else None


def _problem_detail(detail: bytes) -> str:
    """The ``detail`` of a problem document, else the start of the answer."""
    text = _problem(detail).get('detail')
    return text if isinstance(text, str) and text else _excerpt(detail)


def _excerpt(answer: bytes, limit: int = 300) -> str:
    text = ' '.join(answer.decode('utf-8', 'replace').split())
    return (text if len(text) <= limit else text[:limit - 3] + '...') or '(empty)'


# ---------------------------------------------------------------------------------------------------
# command line (for systemd units: ExecStart= with arguments; the token never goes on the command line)

EXIT_DELIVERED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_GAVE_UP = 75  # EX_TEMPFAIL: the receiver could not be reached; a unit may retry later


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='l3metal-webhook', description='Send one signed status webhook to the l3metal webhook receiver.')
    parser.add_argument('--url', required=True, help='base URL of the receiver (the recipe callback.url)')
    parser.add_argument('--serial', required=True, help='server serial number')
    parser.add_argument('--token-file', help='file holding the per-job token (default: environment variable L3METAL_WEBHOOK_TOKEN)')
    parser.add_argument('--job-id', help='job id (the recipe callback.job_id); the receiver checks it is the active job')
    parser.add_argument('--delivery-id', help='delivery id to use (default: a new one); keep it when re-sending one event')
    parser.add_argument('--attempts', type=int, default=8, help='tries before giving up (default 8)')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds per try (default 10)')
    parser.add_argument('--ca-file', help='CA bundle for an https receiver')
    parser.add_argument('--insecure', action='store_true', help='do not verify the receiver certificate')
    sub = parser.add_subparsers(dest='status', required=True)
    sub.add_parser('success', help='the job succeeded')
    failed = sub.add_parser('failed', help='the job failed')
    failed.add_argument('--step', required=True, help='the unit that failed, e.g. bootloader-linux.service')
    failed.add_argument('--reason', help='one line on why')
    failed.add_argument('--log-tail-file', help="file with the last log lines ('-' for stdin); trimmed to the receiver's limit")
    progress = sub.add_parser('progress', help='a step started or finished')
    progress.add_argument('--step', required=True, help='the unit, e.g. partition.service')
    progress.add_argument('--state', required=True, choices=PROGRESS_STATES)
    return parser


def _read_text(path: str) -> str:
    """A file (or stdin) as text; bytes that are not UTF-8 become U+FFFD (journals hold firmware and BIOS strings)."""
    if path == '-':
        return sys.stdin.buffer.read().decode('utf-8', 'replace')
    with open(path, encoding='utf-8', errors='replace') as handle:
        return handle.read()


def main(argv: t.Sequence[str] | None = None) -> int:
    """Send one webhook; exit 0 when delivered (or already delivered), 1 when refused, 75 after the last retry.

    ``--reason`` comes from the command line, where bytes that are not UTF-8 arrive as surrogates:
    ``encode_body`` replaces them, so a failure is reported whatever its text.
    """
    args = _argument_parser().parse_args(argv)
    try:
        token = _read_text(args.token_file).strip() if args.token_file else os.environ.get('L3METAL_WEBHOOK_TOKEN', '')
        if not token:
            raise ValueError('no token: give --token-file or set L3METAL_WEBHOOK_TOKEN')
        if args.status == 'success':
            body = success_body()
        elif args.status == 'failed':
            log_tail = trim_log_tail(_read_text(args.log_tail_file)) if args.log_tail_file else None
            body = failed_body(args.step, args.reason, log_tail)
        else:
            body = progress_body(args.step, args.state)
        sender = WebhookSender(args.url, args.serial, token, job_id=args.job_id, timeout=args.timeout, attempts=args.attempts,
                               ca_file=args.ca_file, validate_certs=not args.insecure)
        status = sender.send(body, delivery_id=args.delivery_id)
    except (OSError, ValueError) as exc:
        sys.stderr.write('l3metal-webhook: %s\n' % exc)
        return EXIT_USAGE
    except WebhookDeliveryError as exc:
        sys.stderr.write('l3metal-webhook: %s\n' % exc)
        return EXIT_GAVE_UP if exc.status is None or exc.status >= 500 or exc.status in (408, 429) else EXIT_REJECTED
    if status == 409:
        sys.stderr.write('l3metal-webhook: %s: already delivered (HTTP 409: the receiver holds this delivery id)\n' % args.status)
    else:
        sys.stderr.write('l3metal-webhook: %s delivered (HTTP %d)\n' % (args.status, status))
    return EXIT_DELIVERED


if __name__ == '__main__':
    raise SystemExit(main())
