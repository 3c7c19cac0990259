# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hypothesis strategies and the case checker shared by the fuzz suite (tests/unit/receiver/test_fuzz.py) and
the soak (bench/receiver_soak.py).

A case is one HTTP request to the in-process receiver (``receiver_inprocess.InProcess``).  ``check`` sends it and
asserts what must hold for any request: never a 5xx, nothing stored changed by a 4xx or by a read, and
the store's invariants afterwards.  ``Tally`` counts what the cases answered, so a run shows it covered
acceptances as well as refusals.
"""

from __future__ import annotations

import base64
import collections
import json
import typing as t
import urllib.parse

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from l3metal_contract import webhook

from .receiver_inprocess import FIRMWARE, InProcess

# Text with what hostile clients send: any Unicode, lone surrogates (JSON "\ud800"), control characters, newlines.
SURROGATES = st.characters(categories=['Cs'])
TEXT = st.text(st.one_of(st.characters(), SURROGATES, st.sampled_from('\n\r\t\x00 ²٣１$')), max_size=40)
SHORT_TEXT = st.text(st.one_of(st.characters(), SURROGATES, st.sampled_from('\n\r')), max_size=12)
NUMBERS = st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SHORT_TEXT, inner, max_size=4), max_leaves=10)


def near(*good: str) -> st.SearchStrategy[t.Any]:
    """Strings that look like what a field wants, near misses of them (a trailing newline, a NUL, a lone surrogate), and anything."""
    misses = [value + suffix for value in good for suffix in ('\n', '\r\n', ' ', '\x00', '\ud800')] + ['', ' ' + good[0], good[0].upper()]
    return st.sampled_from(list(good)) | st.sampled_from(misses) | SCALARS


SERIALS = ['XF-F1', 'XF-F2', 'XF-F3', 'XF-F4']
STEPS = near('partition.service', 'bootloader-linux.service', webhook.SITE_KEY_STEP, 'a@b.service')
RECIPES = st.fixed_dictionaries({}, optional={
    'task_target': near('supermicro-update.target', 'install-linux.target', 'x.target'),
    'firmware_url': near('http://fw.example.com/a.bin', 'https://fw/b'),
    'firmware_sha256': near('0' * 64),
    'target_disk': near('/dev/sda', '/dev/disk/by-id/wwn-0x5'),
    'oci_url': near('registry.example.com/os/rootfs:1'),
    'partition_layout': st.lists(st.fixed_dictionaries({'size': near('100%', '512M'), 'type_guid': near('8300', 'ef00')},
                                                       optional={'format': near('ext4', 'vfat'), 'label': near('root'),
                                                                 'mountpoint': near('/', '/boot/efi')}), max_size=3) | VALUES,
    'user_data': near(base64.b64encode(b'#cloud-config\n').decode(), '!!!'),
    'wim_index': st.integers(-3, 1003) | SCALARS,
    'callback': VALUES,
    '$schema': SCALARS,
    'extra': SCALARS,
})
FIRMWARE_RECIPES = st.just(FIRMWARE) | st.builds(lambda url: dict(FIRMWARE, firmware_url=url), near('http://fw.example.com/a.bin'))
# Valid job requests with random text where a recipe takes any (a URL's path), mostly well-formed ones with one field off
# (so that creation is reached), and anything at all.
VALID_JOB_BODIES = st.builds(lambda serial, path: {'server_serial': serial, 'recipe': dict(FIRMWARE, firmware_url='http://fw.example.com/' + path)},
                             st.sampled_from(SERIALS), st.text(st.characters(exclude_categories=('Zs', 'Zl', 'Zp', 'Cc')), max_size=30))
NEAR_JOB_BODIES = st.fixed_dictionaries({'server_serial': st.sampled_from(SERIALS), 'recipe': FIRMWARE_RECIPES | RECIPES}, optional={
    'attached': st.lists(st.sampled_from(['unattend_xml', 'user_data', 'nope']), max_size=2),
    'public_url': near('http://10.0.0.1:8080'),
})
JOB_BODIES = NEAR_JOB_BODIES | st.fixed_dictionaries({}, optional={
    'server_serial': st.sampled_from(SERIALS) | near('XF-F1'),
    'recipe': FIRMWARE_RECIPES | RECIPES | VALUES,
    'attached': st.lists(near('unattend_xml', 'user_data', 'nope'), max_size=3) | SCALARS,
    'public_url': near('http://10.0.0.1:8080', 'https://ctl'),
    'extra': SCALARS,
})
WEBHOOK_BODIES = st.fixed_dictionaries({'status': near('success', 'failed', 'progress')}, optional={
    'failed_step': STEPS,
    'step': STEPS,
    'state': near('started', 'done'),
    'reason': TEXT | SCALARS,
    'log_tail': TEXT | SCALARS | st.builds(lambda: 'x' * (webhook.MAX_LOG_TAIL + 1)),  # (builds: no 64 KiB repr in reports)
    'job_id': SCALARS,
    'extra': SCALARS,
})
VALID_WEBHOOKS = st.one_of(
    st.builds(webhook.progress_body, st.sampled_from(['partition.service', 'image-linux.service']), st.sampled_from(['started', 'done'])),
    st.just(webhook.success_body()),
    st.builds(lambda reason, tail: webhook.failed_body('bootloader-linux.service', reason, tail), TEXT, TEXT),
)
USER_STATUS_BODIES = st.fixed_dictionaries({'status': near('provisioning', 'failed', 'complete', 'queued', 'succeeded')}, optional={
    'failed_step': STEPS, 'reason': TEXT | SCALARS, 'extra': SCALARS})
# Header values a client can send at all (no CR, LF or NUL; Latin-1)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_characters='\x7f'), max_size=40)
DELIVERY_IDS = st.none() | st.sampled_from(['fuzz-delivery-%d' % n for n in range(6)] + ['a' * 64, 'a' * 65, 'short', 'has space-123', '²²²²²²²²²']) | \
    HEADER_TEXT
TIMESTAMPS = st.sampled_from(['0', '1', '99999999999', '²', '9' * 5000, '-1', '1e9', '', '１７']) | HEADER_TEXT
RANGES = st.sampled_from(['bytes=0-', 'bytes=-1', 'bytes=-0', 'bytes=5-2', 'bytes=0-0', 'bytes=', 'bytes=1-2,3-4', 'items=0-1', 'bytes=٣-',
                          'bytes=²-', 'bytes=0-' + '9' * 5000, 'bytes=18446744073709551616-', 'bytes=9223372036854775807-']) | \
    st.builds(lambda a, b: 'bytes=%s-%s' % (a, b), st.integers(0, 5000).map(str) | st.just(''), st.integers(0, 5000).map(str) | st.just('')) | \
    HEADER_TEXT
DATES = st.sampled_from(['Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'yesterday', '', '²']) | HEADER_TEXT
# (a request line stays under aiohttp's 8190 bytes: a longer one is answered 400 before routing, covered by the raw cases)
QUERY_VALUES = st.sampled_from(['0', '1', '60', '61', '1000', '1001', '2.5', '-1', '²', '¹', '٣', '9' * 1500, 'nan', 'inf', '1e1', '', 'true',
                                'false', 'queued,provisioning', 'XF-F1', 'XF-F1\n']) | HEADER_TEXT
QUERY_KEYS = st.sampled_from(['limit', 'offset', 'after', 'wait', 'status', 'serial', 'active', 'server_serial', 'x'])
QUERIES = st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=4).map(
    lambda pairs: urllib.parse.urlencode([(key, webhook.scrub_text(value)) for key, value in pairs]))
PATH_SEGMENTS = st.sampled_from(['..', '.', '', '%2e%2e', '%00', '%ED%A0%80', '%FF', 'jobs', '.hidden', 'a b', 'x' * 300]) | \
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e, exclude_characters='?#%'), max_size=12)
RAW_LINES = st.sampled_from([b'GET / HTTP/1.1', b'POST /api/v1/jobs HTTP/1.1', b'GET /media/../x HTTP/1.1', b'\x16\x03\x01', b'GET',
                             b'GET /healthz HTTP/9.9', b'GET /\xff HTTP/1.1', b'PRI * HTTP/2.0']) | st.binary(max_size=40)
RAW_HEADERS = st.lists(st.sampled_from([b'Host: x', b'Content-Length: 5', b'Content-Length: \xc2\xb2', b'Content-Length: -1',
                                        b'Content-Length: ' + b'9' * 40, b'Transfer-Encoding: chunked', b'Transfer-Encoding: gzip, chunked',
                                        b'X-Bad: a\x01b', b'Range: bytes=0-' + b'9' * 5000, b'Expect: 100-continue', b'Connection: close',
                                        b'X-' + b'a' * 9000 + b': 1', b'Content-Type: application/json']) | st.binary(max_size=30), max_size=6)


class Tally:
    """Counts of the answers a run got, by request kind and status."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, int]] = collections.Counter()

    def add(self, kind: str, status: int) -> None:
        self.counts[(kind, status)] += 1

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        by_kind: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        for (kind, status), count in self.counts.items():
            by_kind[kind][status] += count
        return '; '.join('%s: %s' % (kind, ', '.join('%d x%d' % (status, count) for status, count in sorted(statuses.items())))
                         for kind, statuses in sorted(by_kind.items()))


def check(h: InProcess, kind: str, send: t.Callable[[], t.Awaitable[t.Any]], tally: Tally | None = None, read_only: bool = False) -> t.Any:
    """Send one case and assert the rules for every request: no 5xx, no change by a 4xx or a read, invariants hold."""
    before = h.mark()
    try:
        answer = h.run(send())
    except BaseException:
        before.close()
        raise
    status = answer.status if hasattr(answer, 'status') else int(answer)
    if tally is not None:
        tally.add(kind, status)
    if status >= 400 or read_only:
        assert before.unchanged(), '%s answered %d and changed what is stored' % (kind, status)
    else:
        before.close()
    assert status < 500, '%s answered %d: %r' % (kind, status, getattr(answer, 'body', b'')[:500])
    if status >= 400 and hasattr(answer, 'body') and answer.body and answer.headers.get('Content-Type', '').startswith('application/problem+json'):
        doc = json.loads(answer.body)
        assert doc['status'] == status and isinstance(doc['detail'], str)
    h.invariants()
    return answer


def raw_request(line: bytes, headers: t.Sequence[bytes], body: bytes) -> bytes:
    return line + b'\r\n' + b''.join(header + b'\r\n' for header in headers) + b'\r\n' + body


# ------------------------------------------------------------------------------------------------ the cases
# Each is one generated request (or two: a job to work on and its completion) with its checks; ``CASES`` names each
# with its strategies, for the fuzz suite (one hypothesis test per case) and the soak (all of them, for minutes).

def _job(h: InProcess, status: str = 'provisioning') -> dict[str, t.Any]:
    job = t.cast(dict[str, t.Any], h.run(h.create_job()))
    if status != 'queued':
        assert h.run(h.request('POST', '/api/v1/jobs/%s/status' % job['job_id'], {'status': status})).status == 200
    return job


def _complete(h: InProcess, tally: Tally, kind: str, job_id: str) -> None:
    check(h, kind, lambda: h.request('POST', '/api/v1/jobs/%s/status' % job_id, {'status': 'complete'}), tally)


def case_job_creation(h: InProcess, tally: Tally, body: t.Any, raw: bytes | None) -> None:
    data = raw if raw is not None else json.dumps(body).encode()
    answer = check(h, 'create', lambda: h.request('POST', '/api/v1/jobs', raw=data), tally)
    if answer.status == 202:  # whatever was accepted is a job the invariants hold for; complete it to free the serial
        assert answer.json['token'] and answer.json['recipe']['callback']['token'] == answer.json['token']
        _complete(h, tally, 'create', answer.json['job_id'])


def case_signed_webhook(h: InProcess, tally: Tally, body: t.Any, raw: bytes | None, delivery: str | None, status: str, site: bool) -> None:
    """Correctly signed webhooks with random contents: only the body decides the answer."""
    job = _job(h, status)
    data = raw if raw is not None else json.dumps(body).encode()
    if site:
        answer = check(h, 'webhook', lambda: h.site_webhook(job['server_serial'], data, delivery), tally)
    else:
        answer = check(h, 'webhook', lambda: h.webhook(job, data, delivery), tally)
    if answer.status == 200:
        parsed = webhook.parse_body(data)
        assert h.run(h.job(job['job_id']))['status'] == {'success': 'succeeded', 'failed': 'failed'}.get(parsed['status'], 'provisioning')
    _complete(h, tally, 'webhook', job['job_id'])


def case_webhook_headers(h: InProcess, tally: Tally, body: t.Any, headers: dict[str, str], serial: str | None, token: str | None) -> None:
    job = _job(h)
    answer = check(h, 'webhook-headers', lambda: h.webhook(job, body, headers=headers, serial=serial, token=token), tally)
    if answer.status == 200:
        assert not token and (serial or job['server_serial']) == job['server_serial']
    _complete(h, tally, 'webhook-headers', job['job_id'])


# What a path segment keeps unquoted: RFC 3986's pchar, and '%' (the sampled escapes go as they are)
SEGMENT_SAFE = "%.-_~!$&'()*+,;=:@"


def any_target(prefix: str, path: t.Sequence[str], query: str) -> str:
    """The target ``case_any_endpoint`` hands the test client: the segments quoted as a client quotes (yarl refuses a raw
    backslash and such; the raw cases send what no client would).

    aiohttp's test client parses the target it is given as a URL reference before it puts its server in front
    (``TestServer.make_url``: ``yarl.URL(path)``), so a target that starts with ``//`` (no prefix, an empty first
    segment) is read there as a network-path reference, its next segment as an authority: a ``:`` in it must start a
    port 0-65535, or yarl raises ValueError (``//a:b``: "port can't be converted to integer"; ``//a:99999``: "Port out
    of range"), a case that never reaches the receiver.  In that segment ``:`` goes as ``%3A``: yarl puts it back when
    it requotes the full URL, so the request line carries ``//a:b``, what a client of ``http://host//a:b`` sends."""
    segments = [urllib.parse.quote(segment, safe=SEGMENT_SAFE) for segment in path]
    if not prefix and len(segments) > 1 and not segments[0]:
        segments[1] = segments[1].replace(':', '%3A')
    return prefix + ''.join('/' + segment for segment in segments) + ('?' + query if query else '')


def case_any_endpoint(h: InProcess, tally: Tally, method: str, path: list[str], prefix: str, query: str, body: t.Any,
                      content_type: str | None, auth: bool) -> None:
    url = any_target(prefix, path, query)
    check(h, 'any', lambda: h.request(method, url, body=body, content_type=content_type, auth=auth), tally,
          read_only=method in ('GET', 'HEAD', 'OPTIONS'))


def case_job_queries(h: InProcess, tally: Tally, query: str, extra: str) -> None:
    job = _job(h, 'queued')
    method = 'GET' if extra in ('', '/events') else 'POST'
    check(h, 'query', lambda: h.request(method, '/api/v1/jobs%s%s?%s' % ('/' + job['job_id'] if extra or query else '', extra, query),
                                        body={'status': 'provisioning'} if extra == '/status' else None), tally, read_only=method == 'GET')
    _complete(h, tally, 'query', job['job_id'])


def case_user_status(h: InProcess, tally: Tally, body: t.Any, start: str, outcome: str | None) -> None:
    job = _job(h, start)
    if outcome:
        h.run(h.webhook(job, webhook.success_body() if outcome == 'success' else webhook.failed_body('a.service')))
    check(h, 'status', lambda: h.request('POST', '/api/v1/jobs/%s/status' % job['job_id'], body), tally)
    _complete(h, tally, 'status', job['job_id'])


MEDIA = bytes(range(256)) * 40


def case_media(h: InProcess, tally: Tally, name: str, headers: dict[str, str], method: str) -> None:
    media = h.settings.media_dir
    if not (media / 'boot.iso').exists():
        (media / 'boot.iso').write_bytes(MEDIA)
        (media / 'dir').mkdir(exist_ok=True)
    answer = check(h, 'media', lambda: h.request(method, '/media/' + name, headers=headers, auth=False), tally, read_only=True)
    assert answer.status in (200, 206, 304, 404, 412, 416), answer.status
    if answer.status == 206:
        first, last = answer.headers['Content-Range'].split(' ')[1].split('/')[0].split('-')
        assert method == 'HEAD' or answer.body == MEDIA[int(first):int(last) + 1]


def case_raw_bytes(h: InProcess, tally: Tally, line: bytes, headers: list[bytes], body: bytes) -> None:
    """Malformed HTTP on the wire: answered 4xx or closed, never a 5xx, nothing changed, the receiver still serves."""
    before = h.mark()
    answer = h.run(h.raw(raw_request(line, headers, body), timeout=0.5))
    status_line = answer.split(b'\r\n', 1)[0]
    tally.add('raw', int(status_line.split(b' ')[1]) if status_line.startswith(b'HTTP/1.') and status_line.split(b' ')[1:2] != [b''] and
              status_line.split(b' ')[1].isdigit() else 0)
    assert not status_line.startswith((b'HTTP/1.1 5', b'HTTP/1.0 5')), answer[:300]
    assert before.unchanged()
    h.invariants()
    assert h.run(h.request('GET', '/healthz')).status == 200


WEBHOOK_HEADER_NAMES = st.sampled_from([webhook.TIMESTAMP_HEADER, webhook.DELIVERY_HEADER, webhook.SIGNATURE_HEADER, webhook.KEY_ID_HEADER,
                                        'Content-Type', 'Content-Encoding', 'Transfer-Encoding', 'Expect', 'X-Other'])
MEDIA_HEADER_NAMES = st.sampled_from(['Range', 'If-Range', 'If-Match', 'If-None-Match', 'If-Modified-Since', 'If-Unmodified-Since', 'Accept-Encoding'])

# name -> (case, its strategies, examples per run of the fuzz suite)
CASES: dict[str, tuple[t.Callable[..., None], dict[str, st.SearchStrategy[t.Any]], int]] = {
    'job_creation': (case_job_creation, dict(body=VALID_JOB_BODIES | JOB_BODIES | VALUES,
                                             raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=200))), 500),
    'signed_webhook': (case_signed_webhook, dict(body=WEBHOOK_BODIES | VALID_WEBHOOKS | VALUES, raw=st.none() | st.binary(max_size=120),
                                                 delivery=DELIVERY_IDS, status=st.sampled_from(['queued', 'provisioning']), site=st.booleans()), 600),
    'webhook_headers': (case_webhook_headers, dict(body=VALID_WEBHOOKS, headers=st.dictionaries(WEBHOOK_HEADER_NAMES, TIMESTAMPS | HEADER_TEXT, max_size=3),
                                                   serial=st.none() | PATH_SEGMENTS,
                                                   token=st.none() | st.sampled_from(['wrong-token-0123456789abcdef'])), 500),
    'any_endpoint': (case_any_endpoint, dict(method=st.sampled_from(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']),
                                             path=st.lists(PATH_SEGMENTS, min_size=0, max_size=4),
                                             prefix=st.sampled_from(['/api/v1/jobs', '/api/v1/status-webhook', '/media', '/media/jobs', '/healthz', '',
                                                                     '/api']),
                                             query=QUERIES, body=st.none() | VALUES | USER_STATUS_BODIES,
                                             content_type=st.sampled_from(['application/json', 'text/plain', None]), auth=st.booleans()), 500),
    'job_queries': (case_job_queries, dict(query=QUERIES, extra=st.sampled_from(['', '/events', '/token', '/status'])), 400),
    'user_status': (case_user_status, dict(body=USER_STATUS_BODIES | VALUES, start=st.sampled_from(['queued', 'provisioning']),
                                           outcome=st.sampled_from([None, 'success', 'failed'])), 400),
    'media': (case_media, dict(name=st.sampled_from(['boot.iso', 'nope.iso', '.hidden', 'jobs', 'dir']) | PATH_SEGMENTS,
                               headers=st.dictionaries(MEDIA_HEADER_NAMES, RANGES | DATES | HEADER_TEXT, max_size=3),
                               method=st.sampled_from(['GET', 'HEAD'])), 400),
    'raw_bytes': (case_raw_bytes, dict(line=RAW_LINES, headers=RAW_HEADERS, body=st.binary(max_size=60)), 300),
}


# ------------------------------------------------------------------------------------------------ whole job lives

class JobLives(RuleBasedStateMachine):
    """Jobs created, reported on, moved by users, completed and replaced, with garbage in between; the store's
    invariants hold after every step and every answer is one the request's kind allows.  Set ``harness`` and
    ``tally`` on the class before running it."""

    jobs = Bundle('jobs')
    harness: InProcess
    tally: Tally

    def __init__(self) -> None:
        super().__init__()
        self.h = type(self).harness
        self.delivered: list[tuple[dict[str, t.Any], str]] = []

    def _check(self, send: t.Callable[[], t.Awaitable[t.Any]], read_only: bool = False) -> t.Any:
        return check(self.h, 'life', send, type(self).tally, read_only=read_only)

    @rule(target=jobs, serial=st.sampled_from(SERIALS), recipe=FIRMWARE_RECIPES | RECIPES)
    def create(self, serial: str, recipe: t.Any) -> t.Any:
        serial = '%s-%d' % (serial, id(self) % 10000)
        answer = self._check(lambda: self.h.request('POST', '/api/v1/jobs', {'server_serial': serial, 'recipe': recipe}))
        assert answer.status in (202, 400, 409), answer.status
        return answer.json if answer.status == 202 else {'server_serial': serial, 'job_id': 'none', 'token': 'x' * 32}

    @rule(job=jobs, body=VALID_WEBHOOKS | WEBHOOK_BODIES, replay=st.booleans(), site=st.booleans())
    def report(self, job: dict[str, t.Any], body: t.Any, replay: bool, site: bool) -> None:
        if replay and self.delivered:
            old_job, delivery = self.delivered[-1]
            answer = self._check(lambda: self.h.webhook(old_job, body, delivery))
            assert answer.status in (400, 401, 404, 409), answer.status
            if answer.status == 401:
                # right only when the old job is no longer its serial's active job: a webhook is checked against the
                # token of the serial's active job, and a job created after the old one completed has another token
                record = self._check(lambda: self.h.request('GET', '/api/v1/jobs/%s' % old_job['job_id']), read_only=True)
                assert record.status == 200 and record.json['status'] == 'complete', (record.status, record.json)
            return
        delivery = webhook.new_delivery_id()
        send = (lambda: self.h.site_webhook(job['server_serial'], body, delivery)) if site else (lambda: self.h.webhook(job, body, delivery))
        answer = self._check(send)
        assert answer.status in (200, 400, 401, 403, 404, 409), answer.status
        if answer.status == 200:
            self.delivered.append((job, delivery))
            again = self._check(send)  # the retry of a stored delivery: already delivered, nothing changes
            assert again.status == 409 and again.json['code'] == webhook.DUPLICATE_DELIVERY_CODE

    @rule(job=jobs, body=USER_STATUS_BODIES | st.sampled_from([{'status': 'provisioning'}, {'status': 'complete'},
                                                               {'status': 'failed', 'failed_step': 'redfish-boot'}]))
    def user(self, job: dict[str, t.Any], body: t.Any) -> None:
        answer = self._check(lambda: self.h.request('POST', '/api/v1/jobs/%s/status' % job['job_id'], body))
        assert answer.status in (200, 400, 404, 409), answer.status

    @rule(job=jobs)
    def reissue(self, job: dict[str, t.Any]) -> None:
        answer = self._check(lambda: self.h.request('POST', '/api/v1/jobs/%s/token' % job['job_id']))
        assert answer.status in (200, 404, 409), answer.status
        if answer.status == 200:
            job['token'] = answer.json['token']

    @rule(job=jobs, query=QUERIES)
    def read(self, job: dict[str, t.Any], query: str) -> None:
        self._check(lambda: self.h.request('GET', '/api/v1/jobs/%s/events?%s' % (job['job_id'], query)), read_only=True)

    @rule(job=jobs, name=st.sampled_from(['task.iso', 'missing.iso', '../task.iso']), headers=st.dictionaries(st.just('Range'), RANGES, max_size=1))
    def media(self, job: dict[str, t.Any], name: str, headers: dict[str, str]) -> None:
        url = job.get('media_url')
        if not url:
            return
        directory = self.h.settings.media_dir / 'jobs' / job['job_id']
        if directory.is_dir() and not (directory / 'task.iso').exists():
            (directory / 'task.iso').write_bytes(b'T' * 3000)
        answer = self._check(lambda: self.h.request('GET', '/media/' + url.split('/media/', 1)[1] + name, headers=headers, auth=False),
                             read_only=True)
        assert answer.status in (200, 206, 404, 410, 416), answer.status

    @invariant()
    def store_invariants(self) -> None:
        self.h.invariants()
