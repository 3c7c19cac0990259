# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One connection to one BMC: options, retries, authentication, system and manager selection.

sushy is the transport: its ``Connector`` does the HTTP (with ``Connection: close``, which many BMCs
need) and its ``SessionOrBasicAuth`` creates and deletes the Redfish session.  Resources are read as
plain JSON (``Resource``: path, body, headers) and written with plain POST/PATCH requests, so every
module sees the same state the same way and no sushy resource class, private member or ETag handler
decides what is sent.  What this file adds:

- a retry policy that is bounded, backs off exponentially (or as long as ``Retry-After`` asks), and
  retries only transient failures: connection errors, 5xx on idempotent requests, 503 on any request;
  a POST that may have been processed is not repeated unless the caller marks the action idempotent;
- a session only when the service root offers a SessionService (no wasted POST on BMCs that lack it),
  and the session is deleted when the client closes, whatever happened before;
- typed errors naming the BMC URL, the request and the BMC's extended message;
- PATCH with the ``If-Match`` ETag of the read the decision was made on (never a blind re-send without it); after a
  412/428 once more with the fresh ETag, taken from the refusal when it carries one (+1 request), else from a new read (+2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import sys
import time
import typing as t
import urllib.parse

from .._contract.retry import RetryPolicy, parse_retry_after
from .errors import (
    BmcMessage,
    RedfishAuthError,
    RedfishConnectionError,
    RedfishError,
    RedfishHTTPError,
    RedfishSelectionError,
    RedfishTLSError,
    RedfishUnsupportedError,
    parse_bmc_messages,
)
from .quirks import TRANSIENT_ERRORS, ActiveQuirks

try:
    import requests
    import sushy
    from sushy import auth as sushy_auth
    from sushy import connector as sushy_connector
    from sushy import exceptions as sushy_exc
    HAS_SUSHY = True
    SUSHY_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_SUSHY = False
    SUSHY_IMPORT_ERROR = exc

ROOT_PREFIX = '/redfish/v1/'
# Requests that may be repeated after an answer was lost or a 5xx came back.
IDEMPOTENT_METHODS = frozenset(['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE'])


def normalize_baseuri(value: str) -> str:
    """``host``, ``host:port``, ``[v6]:port`` or an http(s) URL -> ``scheme://host[:port]`` (https by default).

    A path such as ``/redfish/v1`` is dropped: every request is made under ``/redfish/v1/``.
    """
    text = (value or '').strip()
    if not text:
        raise RedfishSelectionError('baseuri is empty; give the BMC as host, host:port or https://host[:port]')
    if '://' not in text:
        text = 'https://' + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ('http', 'https'):
        raise RedfishSelectionError('baseuri %r: only http and https are supported' % value)
    if parts.username or parts.password:
        raise RedfishSelectionError('baseuri must not contain credentials; use the username and password options')
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise RedfishSelectionError('baseuri %r is not a valid host[:port] or URL: %s' % (value, exc)) from None
    if not host:
        raise RedfishSelectionError('baseuri %r has no host name' % value)
    netloc = '[%s]' % host if ':' in host else host
    if port:
        netloc += ':%d' % port
    return '%s://%s' % (parts.scheme, netloc)


def redfish_policy(retries: int, sleep: t.Callable[[float], None] = time.sleep) -> RetryPolicy:
    """The collection's one retry policy (``_contract.retry``) with the Redfish defaults: ``retries`` retries after the
    first try, 1 s doubling up to 30 s, ``Retry-After`` honoured.  No jitter: each BMC is a server of its own, so
    there is no crowd of clients to spread out, and the waits stay predictable."""
    return RetryPolicy(attempts=max(0, int(retries)) + 1, backoff=1.0, max_delay=30.0, jitter=0.0, sleep=sleep)


@dataclasses.dataclass
class ConnectionOptions:
    baseuri: str
    username: str | None = None
    password: str | None = None
    validate_certs: bool = True
    ca_path: str | None = None
    timeout: float = 30
    retries: int = 3
    system_id: str | None = None
    manager_id: str | None = None

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> ConnectionOptions:
        kwargs: dict[str, t.Any] = {field.name: params.get(field.name) for field in dataclasses.fields(cls)
                                    if params.get(field.name) is not None}
        return cls(**kwargs)

    @property
    def verify(self) -> bool | str:
        if not self.validate_certs:
            return False
        return self.ca_path or True


def _url_path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or '/'


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _connection_reason(exc: BaseException, timeout: float) -> tuple[str, bool]:
    """A short reason for a failed connection, and whether it was TLS."""
    chain = _cause_chain(exc)
    if HAS_SUSHY:
        if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
            text = ' '.join(str(e) for e in chain)
            match = re.search(r'\[SSL[^\]]*\][^\'")]*', text)
            return (match.group(0).strip() if match else 'TLS handshake failed'), True
        if any(isinstance(e, requests.exceptions.ConnectTimeout) for e in chain):
            return 'no TCP connection within %g s' % timeout, False
        if any(isinstance(e, requests.exceptions.ReadTimeout) for e in chain):
            return 'the BMC did not answer within %g s' % timeout, False
    text = ' '.join(str(e) for e in chain)
    for pattern, reason in ((r'Connection refused', 'connection refused'), (r'Name or service not known|nodename nor servname|'
                            r'Temporary failure in name resolution', 'host name does not resolve'),
                            (r'No route to host', 'no route to host'), (r'Connection reset', 'connection reset by the BMC'),
                            (r'RemoteDisconnected|closed connection without response', 'the BMC closed the connection without an answer')):
        if re.search(pattern, text):
            return reason, False
    return text[:300] or type(exc).__name__, False


def _request_not_sent(exc: BaseException) -> bool:
    """True when the request certainly did not reach the BMC (refused, connect timeout, DNS)."""
    if not HAS_SUSHY:
        return False
    chain = _cause_chain(exc)
    if any(isinstance(e, requests.exceptions.ConnectTimeout) for e in chain):
        return True
    text = ' '.join(str(e) for e in chain)
    return bool(re.search(r'NewConnectionError|Connection refused|Name or service not known|No route to host', text))


if HAS_SUSHY:
    class _Connector(sushy_connector.Connector):
        """sushy's connector with our retry policy and request bookkeeping."""

        def __init__(self, url: str, verify: bool | str, timeout: float, policy: RetryPolicy) -> None:
            # sushy's own retry loops are made a single attempt (the policy below retries); the keywords that the
            # installed sushy does not know (older releases lack the timeouts) are left out, the timeout is also
            # passed with every request
            accepted = inspect.signature(sushy_connector.Connector.__init__).parameters
            wanted = dict(server_side_retries=1, server_side_retries_delay=0, default_request_timeout=timeout, connect_timeout=timeout)
            super().__init__(url, verify=verify, response_callback=self._on_response, **{k: v for k, v in wanted.items() if k in accepted})
            self.policy = policy
            self.timeout = timeout
            self.last_request: tuple[str, str] | None = None
            self.last_response: t.Any = None
            self.request_count = 0
            # set once the quirks of the system are known: whether a 5xx answer to a request that is not a safe read
            # may be repeated (method, url, what the BMC said)
            self.transient: t.Callable[[str, str, list[BmcMessage]], bool] | None = None

        def _on_response(self, response: t.Any) -> None:
            self.request_count += 1
            self.last_response = response

        def _retryable(self, method: str, url: str, exc: BaseException) -> tuple[bool, float | None]:
            if isinstance(exc, sushy_exc.ConnectionError):
                reason_tls = _connection_reason(exc, self.timeout)[1]
                if reason_tls:
                    return False, None
                return method in IDEMPOTENT_METHODS or _request_not_sent(exc), None
            if isinstance(exc, sushy_exc.HTTPError):
                status = exc.status_code or 0
                response = self.last_response
                retry_after = parse_retry_after(response.headers.get('Retry-After')) if response is not None else None
                if status == 503:
                    return True, retry_after
                if status >= 500 and status != 501:
                    return method in IDEMPOTENT_METHODS or self._marked_transient(method, url, response), retry_after
            return False, None

        def _marked_transient(self, method: str, url: str, response: t.Any) -> bool:
            if self.transient is None or response is None:
                return False
            try:
                messages = parse_bmc_messages(response.json())
            except ValueError:
                messages = []
            return self.transient(method, _url_path(url), messages)

        def _op(self, method: str, path: str = '', data: t.Any = None, headers: t.Any = None, blocking: bool = False,
                timeout: t.Any = None, server_side_retries_left: t.Any = None, allow_reauth: bool = True,
                **extra: t.Any) -> t.Any:
            url = path if urllib.parse.urlsplit(path).netloc else urllib.parse.urljoin(self._url, path)
            attempt = 0
            while True:
                self.last_request = (method, url)
                try:
                    return super()._op(method, path, data=data, headers=headers, blocking=blocking, timeout=(self.timeout, self.timeout),
                                       server_side_retries_left=0, allow_reauth=allow_reauth, **extra)
                except (sushy_exc.ConnectionError, sushy_exc.HTTPError) as exc:
                    retry, retry_after = self._retryable(method, url, exc)
                    if not retry or attempt >= self.policy.retries:
                        self.last_request = (method, url)
                        raise
                    self.policy.sleep(self.policy.delay(attempt, retry_after))
                    attempt += 1

    class _SessionWhenOffered(sushy_auth.SessionOrBasicAuth):
        """A Redfish session when the service root advertises one, else HTTP basic auth right away.

        sushy's SessionOrBasicAuth POSTs to SessionService/Sessions even when the root lists no
        SessionService; checking the root first saves that request on such BMCs.
        """

        mode = 'basic'
        # the session login that was refused before sushy fell back to basic auth: (request, response)
        login_failure: tuple[tuple[str, str] | None, t.Any] | None = None

        def _fallback_to_basic_authentication(self) -> None:
            refused = sys.exc_info()[1]  # called by sushy inside its ``except AccessError`` of the session login
            if isinstance(refused, sushy_exc.AccessError):
                self.login_failure = (getattr(self._connector, 'last_request', None), getattr(self._connector, 'last_response', None))
            super()._fallback_to_basic_authentication()

        def _do_authenticate(self) -> None:
            root = self._root_resource.json or {}
            offered = 'SessionService' in root or 'Sessions' in (root.get('Links') or {})
            if not offered:
                self._fallback_to_basic_authentication()
                self.mode = 'basic'
                return
            super()._do_authenticate()
            self.mode = 'session' if self.get_session_key() else 'basic'

    class _NoAuth(sushy_auth.AuthBase):
        """No credentials given: a BMC (or emulator) that needs none."""

        mode = 'none'

        def _do_authenticate(self) -> None:
            return None

        def can_refresh_session(self) -> bool:
            return False


@dataclasses.dataclass
class Resource:
    """A Redfish resource as one GET returned it: its path, JSON body and response headers."""

    path: str
    json: dict[str, t.Any]
    headers: t.Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def etag(self) -> str | None:
        """The ETag header of that GET, else ``@odata.etag`` of the body (Lenovo XCC sends it there)."""
        value = self.headers.get('ETag') or self.json.get('@odata.etag')
        return str(value) if value else None

    @property
    def identity(self) -> str:
        return str(self.json.get('Id') or self.path.rstrip('/').rsplit('/', 1)[-1])

    def action_target(self, name: str) -> str | None:
        """Target of ``#<name>`` in ``Actions``, None when the resource lists no such action."""
        action = (self.json.get('Actions') or {}).get('#' + name)
        target = action.get('target') if isinstance(action, dict) else None
        return str(target) if target else None

    def allows(self, method: str) -> bool:
        """Whether the ``Allow`` header of the GET lists ``method``."""
        return method in [m.strip().upper() for m in str(self.headers.get('Allow') or '').split(',')]


class RedfishClient:
    """An open connection to one BMC; use as a context manager so the session is always deleted.

    >>> with RedfishClient(ConnectionOptions(baseuri='bmc.example.com', username='u', password='p')) as client:
    ...     system = client.system()
    """

    def __init__(self, options: ConnectionOptions, policy: RetryPolicy | None = None) -> None:
        self.options = options
        self.base_url = normalize_baseuri(options.baseuri)
        self.policy = policy or redfish_policy(options.retries)
        self.warnings: list[str] = []
        self.conn: t.Any = None
        self.root: t.Any = None
        self._auth: t.Any = None
        self._system: Resource | None = None
        self._quirks: ActiveQuirks | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> RedfishClient:
        if not HAS_SUSHY:
            raise RedfishUnsupportedError('the sushy Python library is not installed: %s' % SUSHY_IMPORT_ERROR, bmc=self.base_url)
        self.conn = _Connector(self.base_url, self.options.verify, float(self.options.timeout), self.policy)
        if self.options.username:
            self._auth = _SessionWhenOffered(username=self.options.username, password=self.options.password or '')
        else:
            self._auth = _NoAuth()
        with self.translate():
            try:
                self.root = sushy.Sushy(self.base_url, auth=self._auth, connector=self.conn, root_prefix=ROOT_PREFIX)
            except BaseException:
                self.close()
                raise
        return self

    def close(self) -> None:
        """Delete the Redfish session (if one was made) and close the HTTP session; never raises."""
        auth, self._auth = self._auth, None
        if self.root is not None:
            self.root._auth = None  # sushy's __del__ would try to close it a second time
        if auth is not None:
            session_uri = getattr(auth, '_session_resource_id', None)
            try:
                auth.close()
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.warnings.append('could not delete the Redfish session %s on %s: %s; it expires on the BMC by itself'
                                     % (session_uri, self.base_url, exc))
        if self.conn is not None:
            self.conn.close()

    def __enter__(self) -> RedfishClient:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def auth_mode(self) -> str:
        return getattr(self._auth, 'mode', 'none') if self._auth is not None else 'closed'

    @property
    def request_count(self) -> int:
        return self.conn.request_count if self.conn is not None else 0

    # -- errors ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def translate(self) -> t.Iterator[None]:
        """Turn sushy and requests exceptions into typed RedfishErrors naming the BMC and the request."""
        try:
            yield
        except RedfishError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise self.error_from(exc) from exc

    def error_from(self, exc: BaseException) -> RedfishError:
        method, url = (self.conn.last_request if self.conn is not None and self.conn.last_request else (None, None))
        path = _url_path(url) if url else None
        where: dict[str, t.Any] = dict(bmc=self.base_url, method=method, url=path)
        if not HAS_SUSHY:
            return RedfishError(str(exc), **where)
        if isinstance(exc, sushy_exc.ConnectionError):
            reason, tls = _connection_reason(exc, float(self.options.timeout))
            if tls:
                hint = ('set ca_path to the CA certificate that signed the BMC certificate' if self.options.ca_path is None
                        else 'ca_path %s does not hold the CA that signed the BMC certificate' % self.options.ca_path)
                return RedfishTLSError('TLS verification of %s failed (%s): %s, or validate_certs: false for a lab BMC'
                                       % (self.base_url, reason, hint), **where)
            return RedfishConnectionError('cannot reach the BMC at %s: %s (after %d retr%s)'
                                          % (self.base_url, reason, self.policy.retries, 'y' if self.policy.retries == 1 else 'ies'),
                                          **where)
        if isinstance(exc, sushy_exc.HTTPError):
            status = exc.status_code
            messages = self._messages_of(exc)
            if isinstance(exc, sushy_exc.AccessError):
                who = "user '%s'" % self.options.username if self.options.username else 'anonymous access (no username given)'
                login = getattr(self._auth, 'login_failure', None)
                if status == 401 and login is not None:
                    return self._login_error(login, who, method, path, messages)
                verb = 'rejected the credentials of' if status == 401 else 'denied the request for'
                return RedfishAuthError('the BMC at %s %s %s (HTTP %s): check username and password, and that the account'
                                        ' may configure virtual media and power' % (self.base_url, verb, who, status),
                                        status=status, bmc_messages=messages, **where)
            return RedfishHTTPError('the BMC at %s refused %s %s with HTTP %s' % (self.base_url, method, path, status),
                                    status=status, bmc_messages=messages, **where)
        if isinstance(exc, sushy_exc.InvalidParameterValueError):
            return RedfishUnsupportedError('the BMC at %s does not accept this value: %s' % (self.base_url, exc), bmc=self.base_url)
        if isinstance(exc, (sushy_exc.MissingAttributeError, sushy_exc.MissingActionError)):
            return RedfishUnsupportedError('the BMC at %s lacks a resource or action this needs: %s' % (self.base_url, exc),
                                           bmc=self.base_url)
        if isinstance(exc, sushy_exc.SushyError):
            return RedfishError('Redfish error from %s: %s' % (self.base_url, exc), **where)
        if isinstance(exc, ValueError):  # a body that is not JSON
            return RedfishHTTPError('the BMC at %s sent an answer that is not valid JSON: %s' % (self.base_url, exc), **where)
        return RedfishError('unexpected error talking to %s: %s: %s' % (self.base_url, type(exc).__name__, exc), **where)

    def _login_error(self, login: tuple[tuple[str, str] | None, t.Any], who: str, method: str | None, path: str | None,
                     messages: list[BmcMessage]) -> RedfishAuthError:
        """A 401 after sushy fell back from a refused session login to basic auth: the login is what to report."""
        (login_method, login_url), response = login[0] or ('POST', None), login[1]
        login_path = _url_path(login_url) if login_url else None
        login_messages = messages
        if response is not None:
            try:
                login_messages = parse_bmc_messages(response.json()) or messages
            except ValueError:
                pass
        return RedfishAuthError('the BMC at %s refused the login of %s (%s %s -> HTTP %s), and basic authentication with the same'
                                ' credentials too (%s %s -> HTTP 401): check username and password'
                                % (self.base_url, who, login_method, login_path, getattr(response, 'status_code', 401), method, path),
                                bmc=self.base_url, method=login_method, url=login_path, status=401, bmc_messages=login_messages)

    def _messages_of(self, exc: t.Any) -> list[BmcMessage]:
        response = self.conn.last_response if self.conn is not None else None
        if response is not None:
            try:
                messages = parse_bmc_messages(response.json())
            except ValueError:
                text = (response.text or '').strip()
                messages = [BmcMessage(text[:500])] if text else []
            if messages:
                return messages
        body = getattr(exc, 'body', None)
        return parse_bmc_messages({'error': body}) if isinstance(body, dict) else []

    # -- plain JSON requests -----------------------------------------------------------------------

    def get_json(self, path: str) -> tuple[dict[str, t.Any], t.Mapping[str, str]]:
        with self.translate():
            response = self.conn.get(path)
            return (response.json() if response.content else {}), response.headers

    def read(self, path: str) -> Resource:
        body, headers = self.get_json(path)
        return Resource(str(path), body, headers)

    def post(self, path: str, data: t.Mapping[str, t.Any] | None = None) -> None:
        with self.translate():
            self.conn.post(path, data=dict(data) if data is not None else None)

    def patch(self, path: str, data: t.Mapping[str, t.Any], etag: str | None = None) -> Resource | None:
        """PATCH with ``If-Match: etag`` when given.  Sent as is: sushy's ETag handler, which re-sends a PATCH refused
        with 412 without If-Match, is not used.  Returns the answer when it is the resource itself (a 200 whose body is
        the resource at ``path``, as DSP0266 lets a BMC answer), None for a 204 or a body of messages only."""
        with self.translate():
            response = self.conn._op('PATCH', path, data=dict(data), headers={'If-Match': etag} if etag else None)
        return _answer_resource(path, response)

    def patch_fresh(self, read: Resource, data: t.Mapping[str, t.Any], still_needed: t.Callable[[Resource], bool]) -> Resource | None:
        """PATCH ``data`` with the ``If-Match`` ETag of ``read``, the GET the decision was made on.

        When the resource changed since (412), or the BMC wants an ETag that was not sent (428), the PATCH is sent once
        more with a fresh ETag; a second 412/428 is reported as such, and a PATCH is never re-sent without If-Match.
        Where the fresh ETag comes from decides what the retry costs:

        - the refusal carries it (an ``ETag`` header, or ``@odata.etag`` of a body that is the resource): the PATCH is
          sent again at once, **one** request more.  ``data`` does not depend on the fresh state (the caller's
          ``still_needed`` only says whether it is still worth sending, it cannot change it), so a fresh read could
          only have saved the PATCH when the resource already holds ``data``; sending the same values again then
          changes nothing, and the caller's read-back checks the result either way.  When the refusal's body is the
          resource, ``still_needed`` is asked on it, as on a fresh read;
        - the refusal carries none (a plain error, the shape of every recorded 412): the resource is read again (GET)
          and PATCHed with the ETag of that read, **two** requests more.  An If-Match ETag must be one the BMC served
          for the resource as it is now, and the GET is the only other place the BMC serves it.

        Returns what the BMC last said the resource is (the PATCH answer, the refusal's body or the fresh read) when an
        answer said so, else None.
        """
        try:
            return self.patch(read.path, data, etag=read.etag)
        except RedfishHTTPError as exc:
            if exc.status not in (412, 428):
                raise
            refused = exc
        answer, etag = self._refusal_etag(read)
        fresh = answer
        if etag is None:
            fresh = self.read(read.path)
            etag = fresh.etag
            if not etag:
                refused.notes.append('the BMC wants If-Match but %s carries no ETag to send' % read.path)
                raise refused
            if etag == read.etag:
                if not etag.startswith('W/'):
                    refused.notes.append('the BMC refused the ETag it serves itself for %s' % read.path)
                    raise refused
                etag = etag[2:]  # a weak ETag refused as such: its strong form (as sushy did)
        if fresh is not None and not still_needed(fresh):
            return fresh
        try:
            return self.patch(read.path, data, etag=etag) or fresh
        except RedfishHTTPError as exc:
            if exc.status in (412, 428):
                exc.message = ('the BMC at %s: %s changed on the BMC between our read and our PATCH, twice (HTTP %d); nothing was changed:'
                               ' another client is changing it, run the task again' % (self.base_url, read.path, exc.status))
            raise

    def _refusal_etag(self, read: Resource) -> tuple[Resource | None, str | None]:
        """The resource and the fresh ETag a 412/428 answer carries: (the body when it is the resource, its ETag header or
        ``@odata.etag``).  An ETag equal to the one refused is no fresh ETag (None): the re-read decides."""
        response = self.conn.last_response if self.conn is not None else None
        if response is None:
            return None, None
        answer = _answer_resource(read.path, response)
        etag = response.headers.get('ETag') or (answer.etag if answer is not None else None)
        if not etag or str(etag) == read.etag:
            return answer, None
        return answer, str(etag)

    # -- tree ------------------------------------------------------------------------------------

    def _collection_members(self, path: str) -> list[str]:
        body, _headers = self.get_json(path)
        return [m['@odata.id'] for m in body.get('Members') or [] if isinstance(m, dict) and m.get('@odata.id')]

    def _select(self, kind: str, collection_path: str | None, wanted: str | None, option: str) -> tuple[str, Resource | None]:
        """Path of the member of a collection, ``wanted`` (Id or path) or the only one there is, and its body
        when selecting it already fetched it."""
        if not collection_path:
            raise RedfishUnsupportedError('the BMC at %s lists no %s collection in its service root' % (self.base_url, kind),
                                          bmc=self.base_url)
        collection_path = collection_path.rstrip('/')
        if wanted:
            candidate = wanted if wanted.startswith('/') else '%s/%s' % (collection_path, urllib.parse.quote(wanted, safe=''))
            try:
                found = self.read(candidate)
                return str(found.json.get('@odata.id') or candidate), dataclasses.replace(found, path=str(found.json.get('@odata.id') or candidate))
            except RedfishHTTPError as exc:
                if exc.status != 404:
                    raise
            members = self._collection_members(collection_path)
            for member in members:
                if member.rstrip('/').rsplit('/', 1)[-1] == wanted:
                    return member, None
            raise RedfishSelectionError('%s: %s %r not found on %s; it has: %s'
                                        % (option, kind, wanted, self.base_url, ', '.join(_ids(members)) or 'none'), bmc=self.base_url)
        members = self._collection_members(collection_path)
        if len(members) == 1:
            return members[0], None
        raise RedfishSelectionError('%s: the BMC at %s has %s %s; set %s to one of: %s'
                                    % (option, self.base_url, len(members) or 'no', kind + 's' if len(members) != 1 else kind,
                                       option, ', '.join(_ids(members)) or '(none)'), bmc=self.base_url)

    def _root_link(self, name: str) -> str | None:
        link = ((self.root.json or {}).get(name) or {}).get('@odata.id') if self.root is not None else None
        return str(link) if link else None

    def system(self) -> Resource:
        """The ComputerSystem (``system_id`` or the only one); read once per client, again by ``refresh_system``."""
        if self._system is None:
            path, body = self._select('system', self._root_link('Systems'), self.options.system_id, 'system_id')
            self._system = body if body is not None else self.read(path)
        return self._system

    def remember_system(self, resource: Resource) -> None:
        """Take ``resource`` (a PATCH answer that is the system) as the system's last known state, ETag included."""
        self._system = dataclasses.replace(resource, path=self.system().path)

    def refresh_system(self) -> Resource:
        self._system = self.read(self.system().path)
        return self._system

    def manager_path(self) -> str:
        """``manager_id``, else the manager that manages the system, else the only manager."""
        if self.options.manager_id:
            return self._select('manager', self._root_link('Managers'), self.options.manager_id, 'manager_id')[0]
        links = (self.system().json or {}).get('Links') or {}
        managed_by = [m['@odata.id'] for m in links.get('ManagedBy') or [] if isinstance(m, dict) and m.get('@odata.id')]
        if len(managed_by) == 1:
            return managed_by[0]
        return self._select('manager', self._root_link('Managers'), None, 'manager_id')[0]

    def quirks(self) -> ActiveQuirks:
        if self._quirks is None:
            body = self.system().json
            self._quirks = ActiveQuirks.for_system(body.get('Manufacturer'), body.get('Model'), body)
            self.conn.transient = self._transient
        return self._quirks

    def _transient(self, method: str, path: str, messages: list[BmcMessage]) -> bool:
        """A 5xx answer to a write is repeated only when the quirks table marks one of its MessageIds transient."""
        active = self._quirks
        return bool(active) and any(active.matches(TRANSIENT_ERRORS, m.message_id) for m in messages if m.message_id)  # type: ignore[union-attr]

    def describe_system(self) -> dict[str, t.Any]:
        system = self.system()
        return {
            'id': system.identity,
            'path': system.path,
            'manufacturer': system.json.get('Manufacturer'),
            'model': system.json.get('Model'),
            'power_state': system.json.get('PowerState'),
        }


def _answer_resource(path: str, response: t.Any) -> Resource | None:
    """The body of ``response`` as the resource at ``path`` when it is that resource (its ``@odata.id`` is ``path``), else None."""
    if response is None or not getattr(response, 'content', None):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or 'error' in body or _url_path(str(body.get('@odata.id') or '')).rstrip('/') != _url_path(path).rstrip('/'):
        return None
    return Resource(str(path), body, response.headers)


def _ids(paths: t.Iterable[str]) -> list[str]:
    return [p.rstrip('/').rsplit('/', 1)[-1] for p in paths]
