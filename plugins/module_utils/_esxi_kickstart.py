# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``%firstboot`` section that reports an ESXi install's success from the installed host.

ESXi runs ``%firstboot --interpreter=python`` scripts once, at the end of the first boot of the installed
system, with its own Python 3 (3.5 on ESXi 6.7, 3.8 and later on 7 and 8) and nothing else: the script
here uses the standard library only, and only what Python 3.5 has.  It sends the job's ``success``
webhook signed as docs/webhooks.md says (the header names and the path come from ``_webhook``, the
one source of the contract; the signing is written out again because the host has no copy of that
module, and the tests check it against ``_webhook.sign`` and the real receiver).

It retries like ``_webhook.WebhookSender`` (same delivery id, new timestamp and signature per attempt,
exponential backoff with jitter; only a 409 with the problem code ``duplicate_delivery`` means delivered,
any other 409 is a refusal) for a bounded time, so an unreachable receiver
delays the first boot by minutes at most.  A host whose clock is off by more than the receiver's
tolerance (a hardware clock set to local time is common) is answered 401; the script then signs with
the receiver's time from that answer's ``Date`` header, once.

The script holds the job's token: the kickstart medium is per job, served only under the job's media
URL, and the token dies with the job.  It never prints the token.
"""

from __future__ import annotations

import hashlib
import re
import typing as t
import urllib.parse

from ._contract.jobs import JOB_ID_PATTERN, SERIAL_PATTERN, TOKEN_MIN_LENGTH
from ._contract.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, SIGNATURE_VERSION, TIMESTAMP_HEADER, WEBHOOK_PATH

SECTION_HEADER = '%firstboot --interpreter=python'
MARKER = '# l3metal.provision: report the job\'s success to the webhook receiver'
DEFAULT_ATTEMPTS = 12
DEFAULT_TIMEOUT = 15
DEFAULT_BACKOFF = 2.0
DEFAULT_MAX_BACKOFF = 60.0

_URL = re.compile(r'^https?://[^\s/?#]+[^\s?#]*\Z')
_PEM = re.compile(r'^(?:-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*)+$')


class KickstartError(Exception):
    """The report cannot be added; the message names the field at fault."""


# The script after its constants.  Python 3.5: no f-strings, no annotations.  No line may start with "%", not even
# after spaces (the kickstart parser could take it for the next section).
_SCRIPT_BODY = r'''
import hashlib
import hmac
import json
import random
import ssl
import sys
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime


def log(message):
    sys.stderr.write('l3metal-report: ' + message + '\n')
    sys.stderr.flush()


def signature(token, timestamp, delivery_id, body):
    """v1=<hex HMAC-SHA256(key=token, msg="v1:" + timestamp + ":" + delivery id + ":" + body)> (docs/webhooks.md)."""
    message = (SIGNATURE_VERSION + ':' + timestamp + ':' + delivery_id + ':').encode('ascii') + body
    return SIGNATURE_VERSION + '=' + hmac.new(token.encode('utf-8'), message, hashlib.sha256).hexdigest()


def success_body():
    return json.dumps({'job_id': JOB_ID, 'status': 'success'}, separators=(',', ':'), sort_keys=True).encode('utf-8')


def signed_request(body, now):
    timestamp = str(int(now))
    headers = {
        'Content-Type': 'application/json',
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: DELIVERY_ID,
        SIGNATURE_HEADER: signature(TOKEN, timestamp, DELIVERY_ID, body),
    }
    return urllib.request.Request(URL, data=body, headers=headers, method='POST')


def build_opener():
    if not URL.startswith('https://'):
        return urllib.request.build_opener()
    context = ssl.create_default_context(cadata=CA_CERT) if CA_CERT else ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def clock_offset(answer, now):
    """Seconds the receiver's clock (the Date header of its answer) is ahead of ``now``; None if it has none."""
    try:
        return parsedate_to_datetime(answer.headers.get('Date')).timestamp() - now
    except (TypeError, ValueError, AttributeError, IndexError):
        return None


def problem_code(detail):
    """The ``code`` of a problem document: only ``duplicate_delivery`` means this report is stored."""
    try:
        doc = json.loads(detail)
    except ValueError:
        return None
    return doc.get('code') if isinstance(doc, dict) else None


def delay(attempt):
    base = min(BACKOFF * (2 ** attempt), MAX_BACKOFF)
    return base / 2 + random.uniform(0, base / 2)


def main(clock=time.time, sleep=time.sleep):
    body = success_body()
    opener = build_opener()
    offset = 0.0
    corrected = False
    last = 'no attempt made'
    for attempt in range(ATTEMPTS):
        try:
            answer = opener.open(signed_request(body, clock() + offset), timeout=TIMEOUT)
            status = answer.status
            answer.close()
            log('success delivered to %s (HTTP %d)' % (URL, status))
            return 0
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode('utf-8', 'replace').strip()
            if exc.code == 409:
                if problem_code(detail) == 'duplicate_delivery':
                    log('success already delivered to %s (HTTP 409: the receiver holds this delivery id)' % URL)
                    return 0
                log('refused by %s: HTTP 409: %s' % (URL, detail))  # the outcome is recorded already, the job is not active...
                return 1
            skew = clock_offset(exc, clock()) if exc.code == 401 else None
            if skew is not None and abs(skew) > 60 and not corrected:
                corrected = True
                offset = skew
                where = 'behind' if skew > 0 else 'ahead of'
                log('this host\'s clock is %d s %s the receiver\'s: signing with the receiver\'s time' % (abs(skew), where))
                continue
            if exc.code < 500 and exc.code not in (408, 429):
                log('refused by %s: HTTP %d: %s' % (URL, exc.code, detail))
                return 1
            last = 'HTTP %d from %s: %s' % (exc.code, URL, detail)
        except (urllib.error.URLError, OSError) as exc:
            last = 'cannot reach %s: %s' % (URL, getattr(exc, 'reason', exc))
        log('attempt %d of %d: %s' % (attempt + 1, ATTEMPTS, last))
        if attempt + 1 < ATTEMPTS:
            sleep(delay(attempt))
    log('gave up after %d attempts: %s' % (ATTEMPTS, last))
    return 75


if __name__ == '__main__':
    sys.exit(main())
'''


def delivery_id(job_id: str) -> str:
    """The delivery id of the job's report: fixed per job (a rebuilt medium is the same bytes; a retry is the same event)."""
    return 'esxi-firstboot-' + hashlib.sha256(job_id.encode('utf-8')).hexdigest()[:32]


def firstboot_report(callback: t.Mapping[str, t.Any], ca_cert: str | None = None, attempts: int = DEFAULT_ATTEMPTS,
                     timeout: float = DEFAULT_TIMEOUT, backoff: float = DEFAULT_BACKOFF, max_backoff: float = DEFAULT_MAX_BACKOFF) -> str:
    """The ``%firstboot`` section (ending in a newline) for the job of ``callback`` (its ``url``, ``serial``, ``job_id``, ``token``)."""
    url, serial, job_id, token = (callback.get(key) for key in ('url', 'serial', 'job_id', 'token'))
    if not isinstance(url, str) or not _URL.fullmatch(url):
        raise KickstartError('ks_report.url: %r is not an http:// or https:// URL of the webhook receiver' % (url,))
    if not isinstance(serial, str) or not SERIAL_PATTERN.match(serial):
        raise KickstartError('ks_report.serial: %r is not a server serial number' % (serial,))
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
        raise KickstartError('ks_report.job_id: %r is not a job id' % (job_id,))
    if not isinstance(token, str) or len(token) < TOKEN_MIN_LENGTH or not token.isprintable():
        raise KickstartError('ks_report.token: must be the job\'s token (at least %d printable characters)' % TOKEN_MIN_LENGTH)
    if ca_cert and not _PEM.match(ca_cert.strip() + '\n'):
        raise KickstartError('ks_report.ca_cert: must be PEM certificates (-----BEGIN CERTIFICATE----- ...)')
    if attempts < 1 or timeout <= 0 or backoff < 0 or max_backoff < backoff:
        raise KickstartError('ks_report: attempts must be at least 1, timeout above 0, and 0 <= backoff <= max_backoff')
    constants = [
        ('URL', url.rstrip('/') + WEBHOOK_PATH + urllib.parse.quote(serial, safe='')),
        ('JOB_ID', job_id),
        ('TOKEN', token),
        ('DELIVERY_ID', delivery_id(job_id)),
        ('CA_CERT', ca_cert.strip() + '\n' if ca_cert else None),
        ('SIGNATURE_VERSION', SIGNATURE_VERSION),
        ('TIMESTAMP_HEADER', TIMESTAMP_HEADER),
        ('DELIVERY_HEADER', DELIVERY_HEADER),
        ('SIGNATURE_HEADER', SIGNATURE_HEADER),
        ('ATTEMPTS', int(attempts)),
        ('TIMEOUT', float(timeout)),
        ('BACKOFF', float(backoff)),
        ('MAX_BACKOFF', float(max_backoff)),
    ]
    lines = [SECTION_HEADER, MARKER, '# (role l3metal.provision.provision_esxi; signed as docs/webhooks.md says; Python standard library only)']
    lines += ['%s = %r' % (name, value) for name, value in constants]
    text = '\n'.join(lines) + '\n' + _SCRIPT_BODY
    if any(line.lstrip().startswith('%') for line in text.splitlines()[1:]):
        raise KickstartError('ks_report: the script would have a line starting with % (the kickstart would end it there)')
    return text


def with_firstboot_report(ks_cfg: str, callback: t.Mapping[str, t.Any], **options: t.Any) -> str:
    """``ks_cfg`` with the report as its last section: it runs after the kickstart's own ``%firstboot`` scripts."""
    return ks_cfg.rstrip('\r\n') + '\n\n' + firstboot_report(callback, **options)
