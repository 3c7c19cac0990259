# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry client: one HTTP session per registry, its authentication, and every API call.

``RegistryClient`` sends each request (TLS with ``ca_path``, plain HTTP only with ``insecure``),
answers ``WWW-Authenticate`` challenges (Basic, or the Bearer token flow of Harbor, GHCR and
distribution with a token service), maps error answers to typed errors, and makes the calls: ping,
resolve, manifests (verified against their digest), blobs (``VerifiedStream``: hashed and size-checked
while they stream), uploads and deletes.  ``push.py`` and ``pull.py`` build on it.

Standard library plus ``requests``; no Ansible imports.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import typing as t
import urllib.parse

from .auth import Credentials, load_docker_config, parse_challenge
from .errors import AuthenticationError, DigestMismatchError, NotFoundError, OciError, RegistryError
from .manifest import MAX_MANIFEST, Descriptor, Manifest
from .reference import ACCEPT, EMPTY_BLOB_DIGEST, Reference, digest_bytes, is_digest, parse_digest, parse_reference
from .decompress import CHUNK

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    requests = None  # type: ignore[assignment]
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

DEFAULT_TIMEOUT = 60.0
USER_AGENT = 'l3metal.provision-oci/1'

__all__ = ['DEFAULT_TIMEOUT', 'HAS_REQUESTS', 'REQUESTS_IMPORT_ERROR', 'RegistryClient', 'VerifiedStream', 'connect', 'fetch_manifest']


class RegistryClient:
    """HTTP access to one registry with authentication, TLS settings and typed errors.

    ``insecure`` selects plain HTTP (never chosen automatically).  ``validate_certs=False`` keeps HTTPS
    but skips verification; ``ca_path`` verifies against that CA bundle.  Credentials come from
    ``username``/``password``, else from ``docker_config``.  On a 401 the client answers the
    ``WWW-Authenticate`` challenge: Basic (credentials sent from then on), or Bearer (a token fetched
    from the realm for the request's scope, with the credentials when it has any, cached per scope).
    """

    def __init__(self, registry: str, *, username: str | None = None, password: str | None = None, docker_config: str | None = None,
                 insecure: bool = False, ca_path: str | None = None, validate_certs: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not HAS_REQUESTS:
            raise OciError('the Python library "requests" is required')
        self.registry = registry
        host = 'registry-1.docker.io' if registry in ('docker.io', 'index.docker.io') else registry
        self.base_url = '%s://%s' % ('http' if insecure else 'https', host)
        self.timeout = timeout
        if password is not None and not username:
            raise AuthenticationError('password given without username')
        if username:
            self.credentials: Credentials | None = Credentials(username, password or '')
        elif docker_config:
            self.credentials = load_docker_config(os.path.expanduser(docker_config), registry)
        else:
            self.credentials = None
        self.session = requests.Session()
        self.session.headers['User-Agent'] = USER_AGENT
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's verify.
        self.verify: bool | str = ca_path if ca_path else validate_certs
        self._basic = False
        self._tokens: dict[str, str] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------
    def _auth_header(self, scope: str) -> str | None:
        if self._basic and self.credentials:
            return self.credentials.basic_header()
        return self._tokens.get(scope)

    def request(self, method: str, path: str, scope: str, *, headers: t.Mapping[str, str] | None = None, stream: bool = False,
                data: t.Any = None, ok: t.Collection[int] = (200,), what: str = '') -> requests.Response:
        """Send a request to ``base_url + path`` (or to ``path`` when it is a whole URL, e.g. an upload
        ``Location``), answering one auth challenge; raise typed errors unless the status is in ``ok``.
        A file object given as ``data`` is sent again from where it started when the challenge asks for
        a second attempt."""
        url = path if path.startswith(('http://', 'https://')) else self.base_url + path
        start = data.tell() if hasattr(data, 'seek') else None
        for attempt in range(2):
            sent = dict(headers or {})
            auth = self._auth_header(scope)
            if auth:
                sent['Authorization'] = auth
            response = self._send(method, url, sent, stream, data)
            if response.status_code == 401 and attempt == 0 and self._answer_challenge(response, scope, url):
                response.close()
                if start is not None:
                    data.seek(start)
                continue
            break
        if response.status_code in ok:
            return response
        self._raise_for(response, url, what or '%s %s' % (method, url))
        raise AssertionError('unreachable')  # pragma: no cover

    def _send(self, method: str, url: str, headers: dict[str, str], stream: bool, data: t.Any) -> requests.Response:
        try:
            return self.session.request(method, url, headers=headers, stream=stream, data=data, timeout=self.timeout,
                                        allow_redirects=True, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise RegistryError('TLS error talking to %s: %s. Give the registry CA with ca_path, or (tests only) '
                                'validate_certs=false' % (self.base_url, _short(exc)), url=url) from None
        except requests.exceptions.ConnectionError as exc:
            hint = ''
            if self.base_url.startswith('https:') and ('WRONG_VERSION_NUMBER' in str(exc) or 'wrong version number' in str(exc)):
                hint = ' (the registry seems to speak plain HTTP; set insecure=true if that is intended)'
            raise RegistryError('cannot connect to %s: %s%s' % (self.base_url, _short(exc), hint), url=url) from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError('request to %s failed: %s' % (url, _short(exc)), url=url) from None

    def _answer_challenge(self, response: requests.Response, scope: str, url: str) -> bool:
        header = response.headers.get('WWW-Authenticate', '')
        scheme, params = parse_challenge(header)
        if scheme == 'basic':
            if self.credentials is None or self._basic:
                return False
            self._basic = True
            return True
        if scheme == 'bearer' and params.get('realm'):
            self._challenge = (scheme, params)
            self._tokens[scope] = 'Bearer ' + self._fetch_token(params, scope)
            return True
        return False

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params['realm']
        query: list[tuple[str, str]] = []
        if params.get('service'):
            query.append(('service', params['service']))
        # The scope we need, plus whatever the registry said (they may differ for catalog calls).
        for item in dict.fromkeys([scope, params.get('scope', '')]):
            if item:
                query.append(('scope', item))
        headers = {'Authorization': self.credentials.basic_header()} if self.credentials else {}
        token_url = realm + ('&' if '?' in realm else '?') + urllib.parse.urlencode(query)
        try:
            answer = self.session.get(token_url, headers=headers, timeout=self.timeout, verify=self.verify)
        except requests.exceptions.RequestException as exc:
            raise AuthenticationError('token service %s of %s failed: %s' % (realm, self.registry, _short(exc)), url=realm) from None
        if answer.status_code in (401, 403):
            raise AuthenticationError('token service %s refused the credentials for %s (HTTP %d); check username/password or docker_config'
                                      % (realm, self.registry, answer.status_code), status=answer.status_code, url=realm)
        if answer.status_code != 200:
            raise AuthenticationError('token service %s answered HTTP %d' % (realm, answer.status_code), status=answer.status_code, url=realm)
        try:
            body = answer.json()
            token = body.get('token') or body.get('access_token')
        except ValueError:
            token = None
        if not token or not isinstance(token, str):
            raise AuthenticationError('token service %s returned no token' % realm, url=realm)
        return token

    def _raise_for(self, response: requests.Response, url: str, what: str) -> None:
        status = response.status_code
        errors: list[dict[str, t.Any]] = []
        try:
            if status == 400 and self.base_url.startswith('http:') and 'HTTPS' in response.text:
                raise RegistryError('%s: HTTP 400: the registry speaks HTTPS; drop insecure (and give ca_path if its CA is private)'
                                    % what, status, url)
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get('errors'), list):
                errors = [e for e in body['errors'] if isinstance(e, dict)]
        except ValueError:
            pass
        finally:
            response.close()
        detail = '; '.join('%s: %s' % (e.get('code'), e.get('message')) for e in errors) or response.reason or ''
        if status == 401:
            hint = 'wrong username/password' if self.credentials else 'the registry needs credentials (username/password or docker_config)'
            raise AuthenticationError('%s: unauthorized (HTTP 401, %s): %s' % (what, detail, hint), status, url, errors)
        if status == 403:
            raise AuthenticationError('%s: forbidden (HTTP 403, %s): the credentials lack permission' % (what, detail), status, url, errors)
        if status == 404:
            raise NotFoundError('%s: not found (%s)' % (what, detail), status, url, errors)
        raise RegistryError('%s: HTTP %d %s' % (what, status, detail), status, url, errors)

    def bearer_token(self, reference: Reference, push: bool = False) -> str | None:
        """The registry token for ``reference``'s pull (or pull,push) scope, when the registry uses the Bearer
        flow; ``None`` for Basic or anonymous registries.  Fetched now if not cached."""
        scope = self.scope(reference, push)
        if scope not in self._tokens and not self._basic:
            # Any authenticated call triggers the challenge; a HEAD of the empty blob is cheap and harmless.
            self.request('HEAD', '/v2/%s/blobs/%s' % (reference.repository, EMPTY_BLOB_DIGEST), scope, ok=(200, 404)).close()
        header = self._tokens.get(scope)
        return header[len('Bearer '):] if header else None

    # -- API calls -----------------------------------------------------------------------------------
    @staticmethod
    def scope(reference: Reference, push: bool = False) -> str:
        return 'repository:%s:%s' % (reference.repository, 'pull,push' if push else 'pull')

    def ping(self) -> None:
        """``GET /v2/``: reachable and speaks the distribution API (auth is checked too)."""
        self.request('GET', '/v2/', 'registry:catalog:*', what='API check of %s' % self.base_url).close()

    def resolve(self, reference: Reference) -> str | None:
        """The manifest digest a reference points to (HEAD), or ``None`` if it does not exist."""
        path = '/v2/%s/manifests/%s' % (reference.repository, reference.selector)
        response = self.request('HEAD', path, self.scope(reference), headers={'Accept': ACCEPT}, ok=(200, 404),
                                what='manifest %s' % reference)
        response.close()
        if response.status_code == 404:
            return None
        if reference.digest:
            return reference.digest
        digest = response.headers.get('Docker-Content-Digest')
        if digest and is_digest(digest):
            return digest
        return self.get_manifest(reference).digest

    def get_manifest(self, reference: Reference) -> Manifest:
        """GET and verify a manifest: against the pinned digest, else against ``Docker-Content-Digest``."""
        path = '/v2/%s/manifests/%s' % (reference.repository, reference.selector)
        response = self.request('GET', path, self.scope(reference), headers={'Accept': ACCEPT}, stream=True, what='manifest %s' % reference)
        try:
            raw = response.raw.read(MAX_MANIFEST + 1, decode_content=True)
        finally:
            response.close()
        if len(raw) > MAX_MANIFEST:
            raise RegistryError('manifest %s is larger than %d bytes' % (reference, MAX_MANIFEST))
        expected = reference.digest or response.headers.get('Docker-Content-Digest')
        algorithm = parse_digest(expected)[0] if expected and is_digest(expected) else 'sha256'
        digest = digest_bytes(raw, algorithm)
        if expected and expected != digest:
            raise DigestMismatchError('manifest %s: content hashes to %s, expected %s' % (reference, digest, expected))
        return Manifest.parse(reference, raw, response.headers.get('Content-Type', ''), digest)

    def open_blob(self, reference: Reference, descriptor: Descriptor) -> VerifiedStream:
        """Stream one blob; the returned reader raises ``DigestMismatchError`` at its end if the bytes
        do not match the descriptor's digest and size."""
        path = '/v2/%s/blobs/%s' % (reference.repository, descriptor.digest)
        response = self.request('GET', path, self.scope(reference), stream=True, what='blob %s of %s' % (descriptor.digest, reference))
        return VerifiedStream(response, descriptor, '%s blob %s' % (reference, descriptor.digest))

    # -- uploads (distribution spec "push"): the one client for push and pull --------------------------
    def blob_exists(self, reference: Reference, digest: str) -> bool:
        """``HEAD`` of a blob in ``reference``'s repository (push scope: an upload follows)."""
        response = self.request('HEAD', '/v2/%s/blobs/%s' % (reference.repository, digest), self.scope(reference, push=True), ok=(200, 404),
                                what='blob %s of %s' % (digest, reference))
        response.close()
        return response.status_code == 200

    def upload_blob(self, reference: Reference, path: str, digest: str, size: int, chunk_size: int | None = None) -> None:
        """Upload the file ``path`` as blob ``digest``: ``POST`` an upload session, then one streamed ``PUT``,
        or ``PATCH`` chunks of ``chunk_size`` bytes (``Content-Range``) and a closing ``PUT``.  The file is
        read as it is sent: memory stays flat whatever its size.  The registry checks the digest."""
        what = 'upload of blob %s (%s) to %s' % (digest, path, reference)
        scope = self.scope(reference, push=True)
        response = self.request('POST', '/v2/%s/blobs/uploads/' % reference.repository, scope, headers={'Content-Length': '0'},
                                ok=(202,), what=what)
        response.close()
        location = self._location(response, what)
        with open(path, 'rb') as handle:
            if chunk_size and size > chunk_size:
                offset = 0
                while offset < size:
                    chunk = handle.read(chunk_size)
                    response = self.request('PATCH', location, scope, data=chunk, ok=(202,), what=what, headers={
                        'Content-Type': 'application/octet-stream', 'Content-Length': str(len(chunk)),
                        'Content-Range': '%d-%d' % (offset, offset + len(chunk) - 1)})
                    response.close()
                    location = self._location(response, what)
                    offset += len(chunk)
                body: t.Any = b''
                length = 0
            else:
                body, length = handle, size
            response = self.request('PUT', _with_query(location, digest=digest), scope, data=body, ok=(201,), what=what,
                                    headers={'Content-Type': 'application/octet-stream', 'Content-Length': str(length)})
            response.close()

    def upload_bytes(self, reference: Reference, data: bytes, digest: str) -> None:
        """A small blob (a config) in one monolithic ``POST`` + ``PUT``."""
        what = 'upload of blob %s to %s' % (digest, reference)
        scope = self.scope(reference, push=True)
        response = self.request('POST', '/v2/%s/blobs/uploads/' % reference.repository, scope, headers={'Content-Length': '0'},
                                ok=(202,), what=what)
        response.close()
        response = self.request('PUT', _with_query(self._location(response, what), digest=digest), scope, data=data, ok=(201,), what=what,
                                headers={'Content-Type': 'application/octet-stream', 'Content-Length': str(len(data))})
        response.close()

    def put_manifest(self, reference: Reference, raw: bytes, media_type: str) -> str | None:
        """``PUT`` a manifest under ``reference``'s tag (or digest); the digest the registry reports, if it does."""
        response = self.request('PUT', '/v2/%s/manifests/%s' % (reference.repository, reference.selector), self.scope(reference, push=True),
                                data=raw, headers={'Content-Type': media_type}, ok=(201,), what='manifest of %s' % reference)
        response.close()
        return response.headers.get('Docker-Content-Digest')

    def _location(self, response: requests.Response, what: str) -> str:
        location = response.headers.get('Location')
        if not location:
            raise RegistryError('%s: the registry answered HTTP %d without a Location for the upload' % (what, response.status_code),
                                response.status_code)
        return urllib.parse.urljoin(response.url or self.base_url + '/', location)

    def delete_manifest(self, reference: Reference, digest: str) -> bool:
        """Delete a manifest by digest (with every tag pointing to it); ``False`` if it was already gone."""
        path = '/v2/%s/manifests/%s' % (reference.repository, digest)
        response = self.request('DELETE', path, self.scope(reference, push=True) + ',delete', ok=(200, 202, 404, 405),
                                what='delete of %s@%s' % (reference, digest))
        response.close()
        if response.status_code == 405:
            raise RegistryError('the registry at %s does not allow deleting manifests (HTTP 405); for distribution, set '
                                'storage.delete.enabled: true' % self.base_url, status=405)
        return response.status_code != 404


def _with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (an upload Location may already carry state parameters)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 400 else text[:400] + '...'


# -- verified streaming ------------------------------------------------------------------------------

_EOF = object()


class VerifiedStream:
    """A ``read(n)`` reader over a blob response that hashes every byte and checks digest and size.

    A background thread reads the socket and hashes (both release the GIL) while the caller
    decompresses and writes, so network, hashing and disk overlap.  At most ``depth`` chunks of
    ``CHUNK`` bytes are in flight, which keeps memory flat whatever the blob size.  The end of the
    stream is reported only after the digest matched; otherwise ``read`` raises ``DigestMismatchError``.
    """

    def __init__(self, response: requests.Response, descriptor: Descriptor, what: str, depth: int = 4) -> None:
        self._response = response
        self._descriptor = descriptor
        self._what = what
        algorithm, self._expected = parse_digest(descriptor.digest)
        self._hasher = hashlib.new(algorithm)
        self._queue: queue.Queue[t.Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = b''
        self._pos = 0
        self._done = False
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._pump, name='oci-blob', daemon=True)
        self._thread.start()

    def _put(self, item: t.Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        size = self._descriptor.size
        total = 0
        try:
            raw = self._response.raw
            while True:
                chunk = raw.read(CHUNK, decode_content=True)
                if not chunk:
                    break
                total += len(chunk)
                if total > size:
                    raise DigestMismatchError('%s: the registry sent more than the %d bytes the manifest announces' % (self._what, size))
                self._hasher.update(chunk)
                if not self._put(chunk):
                    return
            if total != size:
                raise DigestMismatchError('%s: got %d bytes, the manifest announces %d (truncated download?)' % (self._what, total, size))
            if self._hasher.hexdigest() != self._expected:
                raise DigestMismatchError('%s: content hashes to %s:%s, expected %s; the blob in the registry is corrupt or was tampered with'
                                          % (self._what, self._hasher.name, self._hasher.hexdigest(), self._descriptor.digest))
            self._put(_EOF)
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to the reader thread
            if isinstance(exc, (OciError,)):
                self._put(exc)
            else:
                self._put(RegistryError('%s: download failed: %s' % (self._what, _short(exc))))
        finally:
            self._response.close()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b''.join(iter(lambda: self.read(CHUNK), b''))
        while self._pos >= len(self._buf):
            if self._done:
                return b''
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    raise OciError('%s: the download was stopped' % self._what) from None
                continue
            if item is _EOF:
                self._done = True
                return b''
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._buf, self._pos = item, 0
        data = self._buf[self._pos:self._pos + size]
        self._pos += len(data)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._stop.set()
        self._response.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> VerifiedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- one call --------------------------------------------------------------------------------------

def connect(reference: str | Reference, username: str | None, password: str | None, docker_config: str | None, insecure: bool,
            ca_path: str | None, validate_certs: bool, timeout: float) -> tuple[Reference, RegistryClient]:
    """Parse ``reference`` and make a client for its registry (use it as a context manager)."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    return ref, RegistryClient(ref.registry, username=username, password=password, docker_config=docker_config, insecure=insecure,
                               ca_path=ca_path, validate_certs=validate_certs, timeout=timeout)


def fetch_manifest(reference: str | Reference, *, username: str | None = None, password: str | None = None, docker_config: str | None = None,
                   insecure: bool = False, ca_path: str | None = None, validate_certs: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Manifest:
    """Resolve and verify the manifest of ``reference``."""
    ref, client = connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
    with client:
        return client.get_manifest(ref)
