# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small OCI distribution client: resolve, verify, stream and unpack artifacts.

No Ansible imports; standard library plus ``requests`` (and ``zstandard`` when present): the
controller's ``oci_artifact`` modules and the maintenance OS's image steps run this same file.
Public API:

``parse_reference(text) -> Reference``
    ``registry/repo:tag``, ``registry/repo@sha256:...`` or both.
``RegistryClient``
    One registry: Basic auth, the Bearer token challenge flow (Harbor, GHCR, distribution with a token
    service), docker ``config.json`` credentials, TLS with ``ca_path``, plain HTTP only with ``insecure``.
``pull_and_unpack(reference, dest_dir, ...) -> PullResult``
    Streams each tar layer (``.tar``, ``.tar.gz``, ``.tar.zst``, ``.tar.xz``) straight into ``dest_dir``
    while hashing it; see its docstring for what is visible when.
``pull_blob_to_file(reference, path, ...) -> PullResult``
    One layer (a ``.wim``, an ISO) to one file, verified, replaced atomically.
``pull_to_directory(reference, dest_dir, ...) -> PullResult``
    Every layer to ``dest_dir/<title>``, each verified and atomic; unchanged files are not downloaded.

Every byte is checked against its descriptor's digest and size while it streams; a mismatch raises
``DigestMismatchError``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import typing as t
import urllib.parse
from dataclasses import asdict, dataclass, field

from .errors import (
    AuthenticationError,
    CorruptStreamError,
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    OciError,
    RegistryError,
    UnsafeArchiveError,
    UnsupportedError,
)
from .unpack import CHUNK, ExtractStats, TarExtractor, merge_tree, mount_points_below

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    requests = None  # type: ignore[assignment]
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

__all__ = [
    'OciError', 'InvalidReferenceError', 'RegistryError', 'AuthenticationError', 'NotFoundError', 'DigestMismatchError',
    'UnsupportedError', 'CorruptStreamError', 'UnsafeArchiveError', 'Reference', 'Descriptor', 'Manifest', 'PullResult', 'RegistryClient', 'parse_reference',
    'pull_and_unpack', 'pull_blob_to_file', 'pull_to_directory', 'fetch_manifest', 'RECORD_NAME',
]

MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
ACCEPT = ', '.join(MANIFEST_TYPES + (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST))
TITLE = 'org.opencontainers.image.title'
RECORD_NAME = '.oci-artifact.json'
DEFAULT_TIMEOUT = 60.0
USER_AGENT = 'l3metal.provision-oci/1'
EMPTY_BLOB_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'  # of b'{}'
MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended manifest limit

# Grammar of github.com/distribution/reference, enough to reject typos early.
_DOMAIN = r'(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?'
_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_REFERENCE = re.compile(
    r'^(?P<registry>%s)/(?P<repository>%s(?:/%s)*)' % (_DOMAIN, _COMPONENT, _COMPONENT)
    + r'(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+))?$')
_DIGEST = re.compile(r'^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$')
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Reference:
    """A parsed artifact reference.  ``tag`` and ``digest`` may both be set; the digest then wins."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def selector(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag (``latest`` if none)."""
        return self.digest or self.tag or 'latest'

    @property
    def api_host(self) -> str:
        # Docker Hub's name and API host differ.
        return 'registry-1.docker.io' if self.registry in ('docker.io', 'index.docker.io') else self.registry

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = '%s/%s' % (self.registry, self.repository)
        if self.tag:
            text += ':' + self.tag
        if self.digest:
            text += '@' + self.digest
        return text


def parse_reference(reference: str) -> Reference:
    """Parse ``registry/repo[:tag][@digest]``; the registry part is required (no implicit Docker Hub).

    >>> parse_reference('127.0.0.1:5000/os-images/ubuntu:22.04')
    Reference(registry='127.0.0.1:5000', repository='os-images/ubuntu', tag='22.04', digest=None)
    """
    text = (reference or '').strip()
    match = _REFERENCE.match(text)
    if not match:
        raise InvalidReferenceError(
            'reference %r is not registry/repository[:tag][@sha256:<64 hex>] (repository names are lower case; '
            'the registry host is required, e.g. registry.example.com:5000/os-images/ubuntu:22.04)' % reference)
    registry = match.group('registry')
    if '.' not in registry and ':' not in registry and registry != 'localhost' and not registry.startswith('['):
        raise InvalidReferenceError('reference %r: %r does not look like a registry host; write the registry first, '
                                    'e.g. docker.io/%s' % (reference, registry, text))
    digest = match.group('digest')
    if digest is not None and not _DIGEST.match(digest):
        raise InvalidReferenceError('reference %r: digest must be sha256:<64 lower-case hex> or sha512:<128 hex>' % reference)
    return Reference(registry, match.group('repository'), match.group('tag'), digest)


def _parse_digest(digest: str) -> tuple[str, str]:
    if not _DIGEST.match(digest or ''):
        raise UnsupportedError('unsupported or malformed digest %r (sha256 and sha512 are supported)' % digest)
    algorithm, value = digest.split(':', 1)
    return algorithm, value


def digest_bytes(data: bytes, algorithm: str = 'sha256') -> str:
    return '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())


def digest_file(path: str, algorithm: str = 'sha256') -> str:
    hasher = hashlib.new(algorithm)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            hasher.update(chunk)
    return '%s:%s' % (algorithm, hasher.hexdigest())


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (manifest config or layer)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    @property
    def title(self) -> str | None:
        return self.annotations.get(TITLE)

    @classmethod
    def from_json(cls, data: t.Any, where: str) -> Descriptor:
        if not isinstance(data, dict) or not isinstance(data.get('digest'), str) or not isinstance(data.get('size'), int):
            raise RegistryError('%s: malformed descriptor %r' % (where, data))
        _parse_digest(data['digest'])
        if data['size'] < 0:
            raise RegistryError('%s: negative size in descriptor %r' % (where, data))
        annotations = data.get('annotations') or {}
        return cls(str(data.get('mediaType', '')), data['digest'], data['size'],
                   {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {},
                   data.get('artifactType'))

    def as_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {'media_type': self.media_type, 'digest': self.digest, 'size': self.size,
                                    'annotations': dict(self.annotations), 'title': self.title}
        if self.artifact_type:
            result['artifact_type'] = self.artifact_type
        return result


@dataclass(frozen=True)
class Manifest:
    """A verified image/artifact manifest: its exact bytes, digest and parsed parts."""

    reference: Reference
    digest: str
    media_type: str
    raw: bytes
    data: dict[str, t.Any]
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str]

    @property
    def artifact_type(self) -> str:
        """``artifactType`` if set, else the config media type (the OCI 1.1 rule for artifacts)."""
        return str(self.data.get('artifactType') or self.config.media_type)

    @property
    def total_size(self) -> int:
        return self.config.size + sum(layer.size for layer in self.layers)

    @classmethod
    def parse(cls, reference: Reference, raw: bytes, content_type: str, digest: str) -> Manifest:
        where = 'manifest of %s' % reference
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RegistryError('%s is not JSON: %s' % (where, exc)) from None
        if not isinstance(data, dict):
            raise RegistryError('%s is not a JSON object' % where)
        media_type = str(data.get('mediaType') or content_type.split(';')[0].strip())
        if media_type in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST) or 'manifests' in data:
            choices = ', '.join('%s (%s)' % (m.get('digest'), (m.get('platform') or {}).get('architecture', m.get('artifactType', '?')))
                                for m in data.get('manifests', []) if isinstance(m, dict))
            raise UnsupportedError('%s is an index (%s); pin one of its manifests by digest: %s' % (where, media_type, choices or 'none'))
        if media_type not in MANIFEST_TYPES or data.get('schemaVersion') != 2:
            raise UnsupportedError('%s has media type %r (schema %r); supported: %s'
                                   % (where, media_type, data.get('schemaVersion'), ', '.join(MANIFEST_TYPES)))
        config = Descriptor.from_json(data.get('config'), where + ' config')
        layers = data.get('layers')
        if not isinstance(layers, list):
            raise RegistryError('%s has no layers list' % where)
        annotations = data.get('annotations') or {}
        return cls(reference, digest, media_type, raw, data, config,
                   tuple(Descriptor.from_json(layer, '%s layer %d' % (where, i)) for i, layer in enumerate(layers)),
                   {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {})

    def as_dict(self) -> dict[str, t.Any]:
        return {
            'reference': str(self.reference), 'digest': self.digest, 'media_type': self.media_type,
            'artifact_type': self.artifact_type, 'annotations': dict(self.annotations), 'config': self.config.as_dict(),
            'layers': [layer.as_dict() for layer in self.layers], 'size': self.total_size,
        }


@dataclass
class LayerResult:
    digest: str
    size: int
    media_type: str
    title: str | None
    action: str  # 'unpacked', 'downloaded', 'unchanged', 'skipped'
    path: str | None = None
    compression: str | None = None


@dataclass
class PullResult:
    """What a pull did; ``changed`` is false when nothing on disk had to change."""

    reference: str
    digest: str
    media_type: str
    artifact_type: str
    layers: list[LayerResult]
    changed: bool
    dest: str
    bytes_downloaded: int = 0
    stats: ExtractStats | None = None

    def as_dict(self) -> dict[str, t.Any]:
        result = asdict(self)
        if self.stats is None:
            result.pop('stats')
        return result


# -- credentials -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        return 'Basic ' + base64.b64encode(('%s:%s' % (self.username, self.password)).encode('utf-8')).decode('ascii')


def _config_keys(registry: str) -> list[str]:
    keys = [registry, 'https://' + registry, 'http://' + registry, 'https://%s/v1/' % registry, 'https://%s/v2/' % registry]
    if registry in ('docker.io', 'index.docker.io', 'registry-1.docker.io'):
        keys.insert(0, 'https://index.docker.io/v1/')
    return keys


def load_docker_config(path: str, registry: str) -> Credentials | None:
    """Credentials for ``registry`` from a docker/podman ``config.json`` (or ``auth.json``), or ``None``.

    ``path`` may be the file or the directory holding ``config.json``.  Reads ``auths`` (``auth`` =
    base64 ``user:password``, or ``username``/``password``), then ``credHelpers``/``credsStore`` through
    ``docker-credential-<helper> get``.  ``identitytoken`` (OAuth refresh tokens) is not supported.
    """
    if os.path.isdir(path):
        path = os.path.join(path, 'config.json')
    try:
        with open(path, 'rb') as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise AuthenticationError('docker_config: %s does not exist' % path) from None
    except (OSError, ValueError) as exc:
        raise AuthenticationError('docker_config: cannot read %s: %s' % (path, exc)) from None
    if not isinstance(config, dict):
        raise AuthenticationError('docker_config: %s is not a JSON object' % path)
    auths = config.get('auths') or {}
    for key in _config_keys(registry):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if not isinstance(entry, dict):
            continue
        if entry.get('auth'):
            try:
                user, _sep, password = base64.b64decode(entry['auth']).decode('utf-8').partition(':')
            except (ValueError, UnicodeDecodeError):
                raise AuthenticationError('docker_config: %s: auths[%r].auth is not base64 of user:password' % (path, key)) from None
            return Credentials(user, password)
        if entry.get('username'):
            return Credentials(str(entry['username']), str(entry.get('password', '')))
        if entry.get('identitytoken'):
            raise AuthenticationError('docker_config: %s: auths[%r] holds an identitytoken, which is not supported; '
                                      'give username/password instead' % (path, key))
    helper = (config.get('credHelpers') or {}).get(registry) or config.get('credsStore')
    if helper:
        return _credential_helper(str(helper), registry, path)
    return None


def _credential_helper(helper: str, registry: str, path: str) -> Credentials | None:
    binary = 'docker-credential-' + helper
    try:
        proc = subprocess.run([binary, 'get'], input=registry.encode(), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthenticationError('docker_config: %s names credential helper %s, which cannot run: %s' % (path, binary, exc)) from None
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(proc.stdout)
        return Credentials(str(answer['Username']), str(answer['Secret']))
    except (ValueError, KeyError, TypeError):
        raise AuthenticationError('docker_config: %s get printed no JSON with Username and Secret' % binary) from None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> (``bearer``, {realm, service, scope})."""
    scheme, _sep, rest = header.strip().partition(' ')
    params = {key.lower(): (quoted.replace('\\"', '"') if quoted is not None and quoted != '' else bare or '')
              for key, quoted, bare in _AUTH_PARAM.findall(rest)}
    return scheme.lower(), params


# -- the client --------------------------------------------------------------------------------------

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
        if digest and _DIGEST.match(digest):
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
        algorithm = _parse_digest(expected)[0] if expected and _DIGEST.match(expected) else 'sha256'
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
        algorithm, self._expected = _parse_digest(descriptor.digest)
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


# -- high-level operations ---------------------------------------------------------------------------

def _connect(reference: str | Reference, username: str | None, password: str | None, docker_config: str | None, insecure: bool,
             ca_path: str | None, validate_certs: bool, timeout: float) -> tuple[Reference, RegistryClient]:
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    return ref, RegistryClient(ref.registry, username=username, password=password, docker_config=docker_config, insecure=insecure,
                               ca_path=ca_path, validate_certs=validate_certs, timeout=timeout)


def fetch_manifest(reference: str | Reference, *, username: str | None = None, password: str | None = None, docker_config: str | None = None,
                   insecure: bool = False, ca_path: str | None = None, validate_certs: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Manifest:
    """Resolve and verify the manifest of ``reference``."""
    ref, client = _connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
    with client:
        return client.get_manifest(ref)


def is_tar_layer(layer: Descriptor) -> bool:
    """Tar-like by media type or title (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.zst``, ``.tar.xz``)."""
    media = layer.media_type
    if 'tar' in media.split('/')[-1] or media.startswith('application/vnd.docker.image.rootfs.diff.tar'):
        return True
    title = (layer.title or '').lower()
    return title.endswith(('.tar', '.tar.gz', '.tgz', '.tar.zst', '.tar.zstd', '.tar.xz', '.txz'))


def _select_layers(manifest: Manifest, layer_media_types: t.Collection[str] | None) -> list[Descriptor]:
    if layer_media_types:
        chosen = [layer for layer in manifest.layers if layer.media_type in layer_media_types]
        if not chosen:
            raise NotFoundError('%s has no layer of media type %s (layers: %s)'
                                % (manifest.reference, ', '.join(sorted(layer_media_types)), ', '.join(layer.media_type for layer in manifest.layers)))
        return chosen
    chosen = [layer for layer in manifest.layers if is_tar_layer(layer)]
    if not chosen:
        raise NotFoundError('%s has no tar layer to unpack (layers: %s)'
                            % (manifest.reference, ', '.join('%s %s' % (layer.media_type, layer.title or '') for layer in manifest.layers)))
    return chosen


def read_record(dest_dir: str) -> dict[str, t.Any] | None:
    """The record ``pull_and_unpack`` left in ``dest_dir`` (which artifact is unpacked there), if any."""
    try:
        with open(os.path.join(dest_dir, RECORD_NAME), 'rb') as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def pull_and_unpack(reference: str | Reference, dest_dir: str, *, username: str | None = None, password: str | None = None,
                    docker_config: str | None = None, insecure: bool = False, ca_path: str | None = None, validate_certs: bool = True,
                    timeout: float = DEFAULT_TIMEOUT, layer_media_types: t.Collection[str] | None = None,
                    preserve_owner: bool | None = None, allow_absolute_symlinks: bool = True, record: bool = True,
                    force: bool = False) -> PullResult:
    """Stream the tar layer(s) of an artifact into ``dest_dir``, verifying each blob while it streams.

    Layers chosen: those whose media type is in ``layer_media_types``; by default every tar-like layer
    (see ``is_tar_layer``), in manifest order (later layers overwrite earlier ones, as tar would).
    Compression is detected from the bytes (gzip, zstd, xz, none).  Nothing is downloaded to a
    temporary file: the HTTP stream is hashed, decompressed and written as it arrives.

    What is visible when (the guarantee):

    - ``dest_dir`` missing: everything is unpacked into a sibling ``.<name>.oci-XXXXXX`` directory,
      which is renamed to ``dest_dir`` after every layer's digest matched.  ``dest_dir`` appears
      complete or not at all.
    - ``dest_dir`` exists (a mounted partition, say): everything is unpacked into a hidden staging
      directory ``dest_dir/.oci-unpack-XXXXXX`` first; only after every digest matched are its entries
      moved into ``dest_dir`` by ``rename`` (metadata only, no data copied; existing files are replaced
      atomically one by one, like tar).  A crash during that last move can leave part of the new tree
      beside the old one, never a half-written file.
    - On any error (digest or size mismatch, unsafe member, I/O error) the staging directory is
      removed and ``dest_dir`` is as before.

    With ``record`` (default), ``dest_dir/.oci-artifact.json`` records the reference, manifest digest
    and layers; when it already names the same manifest digest, nothing is downloaded and
    ``changed`` is false (``force`` unpacks again).  Ownership is restored when running as root
    (``preserve_owner``), numerically.  See ``unpack`` for the path safety rules.
    """
    dest_dir = os.path.abspath(dest_dir)
    ref, client = _connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
    with client:
        manifest = client.get_manifest(ref)
        layers = _select_layers(manifest, layer_media_types)
        existing = read_record(dest_dir) if record else None
        if existing and existing.get('digest') == manifest.digest and not force:
            return PullResult(str(ref), manifest.digest, manifest.media_type, manifest.artifact_type,
                              [LayerResult(layer.digest, layer.size, layer.media_type, layer.title, 'unchanged') for layer in layers],
                              False, dest_dir)
        exists = os.path.isdir(dest_dir)
        if not exists and os.path.lexists(dest_dir):
            raise OciError('dest: %s exists and is not a directory' % dest_dir)
        mounts: dict[tuple[str, ...], str] = {}
        if exists:
            staging = tempfile.mkdtemp(prefix='.oci-unpack-', dir=dest_dir)
            # A file system mounted inside the target (/boot, /boot/efi) gets a staging directory of its own,
            # since the final rename cannot cross file systems.
            try:
                for point in mount_points_below(dest_dir):
                    parts = tuple(os.path.relpath(point, os.path.realpath(dest_dir)).split(os.sep))
                    mounts[parts] = tempfile.mkdtemp(prefix='.oci-unpack-', dir=point)
            except BaseException:
                for path in [staging] + list(mounts.values()):
                    shutil.rmtree(path, ignore_errors=True)
                raise
        else:
            parent = os.path.dirname(dest_dir)
            if not os.path.isdir(parent):
                raise OciError('dest: parent directory %s does not exist' % parent)
            staging = tempfile.mkdtemp(prefix='.%s.oci-' % os.path.basename(dest_dir), dir=parent)
        results: list[LayerResult] = []
        downloaded = 0
        try:
            extractor = TarExtractor(staging, preserve_owner=preserve_owner, allow_absolute_symlinks=allow_absolute_symlinks, mounts=mounts)
            try:
                for layer in layers:
                    with client.open_blob(ref, layer) as stream:
                        # extract() reads to the blob's end (past the tar end marker), so the digest is checked.
                        try:
                            stats = extractor.extract(stream)
                        except CorruptStreamError:
                            # A damaged blob usually breaks decompression first: read on, so that a digest
                            # mismatch is reported as what it is.
                            for _chunk in iter(lambda: stream.read(CHUNK), b''):
                                pass
                            raise
                        downloaded += stream.bytes_read
                    results.append(LayerResult(layer.digest, layer.size, layer.media_type, layer.title, 'unpacked', dest_dir, stats.compression))
                stats_total = extractor.finish()
            finally:
                extractor.close()
            if record:
                _write_record(staging, ref, manifest, layers)
            if exists:
                for parts in sorted(mounts, key=len, reverse=True):  # deepest first, then the root
                    merge_tree(mounts[parts], os.path.join(dest_dir, *parts))
                merge_tree(staging, dest_dir)
            else:
                os.rename(staging, dest_dir)
        except BaseException:
            for path in [staging] + list(mounts.values()):
                shutil.rmtree(path, ignore_errors=True)
            raise
    return PullResult(str(ref), manifest.digest, manifest.media_type, manifest.artifact_type, results, True, dest_dir, downloaded, stats_total)


def _write_record(directory: str, ref: Reference, manifest: Manifest, layers: t.Sequence[Descriptor]) -> None:
    path = os.path.join(directory, RECORD_NAME)
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump({'reference': str(ref), 'digest': manifest.digest, 'media_type': manifest.media_type,
                   'artifact_type': manifest.artifact_type,
                   'layers': [{'digest': layer.digest, 'size': layer.size, 'media_type': layer.media_type, 'title': layer.title}
                              for layer in layers]}, handle, indent=2, sort_keys=True)
        handle.write('\n')
    os.chmod(path, 0o644)


def _download(client: RegistryClient, ref: Reference, layer: Descriptor, path: str, mode: int | None) -> int:
    """Stream one blob into ``path`` via a temporary sibling, fsync, verify, rename.  Returns bytes read."""
    directory = os.path.dirname(path) or '.'
    fd, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.part', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as out, client.open_blob(ref, layer) as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b''):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            count = stream.bytes_read
        os.chmod(temp, 0o644 if mode is None else mode)
        os.rename(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return count


def _pick_layer(manifest: Manifest, layer: str | int | None) -> Descriptor:
    layers = manifest.layers
    if layer is None:
        if len(layers) != 1:
            raise OciError('%s has %d layers; name the one to fetch by title, media type or index (titles: %s)'
                           % (manifest.reference, len(layers), ', '.join(str(d.title) for d in layers)))
        return layers[0]
    if isinstance(layer, int):
        if not 0 <= layer < len(layers):
            raise NotFoundError('%s has no layer %d (it has %d)' % (manifest.reference, layer, len(layers)))
        return layers[layer]
    for descriptor in layers:
        if layer in (descriptor.title, descriptor.media_type, descriptor.digest):
            return descriptor
    raise NotFoundError('%s has no layer titled %r or of media type %r' % (manifest.reference, layer, layer))


def pull_blob_to_file(reference: str | Reference, path: str, *, layer: str | int | None = None, username: str | None = None,
                      password: str | None = None, docker_config: str | None = None, insecure: bool = False, ca_path: str | None = None,
                      validate_certs: bool = True, timeout: float = DEFAULT_TIMEOUT, mode: int | None = None) -> PullResult:
    """Fetch one layer of a single-file artifact (a Windows ``.wim``, an ISO) to ``path``.

    ``layer`` picks it by title, media type, digest or index (default: the only layer).  The blob
    streams into a temporary file beside ``path``, is fsynced, and replaces ``path`` by ``rename`` only
    after its digest matched: ``path`` is the old file or the complete new one, never a partial one.
    When ``path`` already holds content with the right digest nothing is downloaded (``changed`` false).
    """
    path = os.path.abspath(path)
    ref, client = _connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
    with client:
        manifest = client.get_manifest(ref)
        descriptor = _pick_layer(manifest, layer)
        if _file_matches(path, descriptor):
            action, count = 'unchanged', 0
        else:
            count = _download(client, ref, descriptor, path, mode)
            action = 'downloaded'
    result = LayerResult(descriptor.digest, descriptor.size, descriptor.media_type, descriptor.title, action, path)
    return PullResult(str(ref), manifest.digest, manifest.media_type, manifest.artifact_type, [result], action != 'unchanged', path, count)


def _file_matches(path: str, descriptor: Descriptor) -> bool:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) != descriptor.size:
            return False
        return digest_file(path, _parse_digest(descriptor.digest)[0]) == descriptor.digest
    except OSError:
        return False


def safe_title(descriptor: Descriptor) -> str:
    """File name for a layer: its title if that is a plain file name, else ``<digest hex>.blob``."""
    title = descriptor.title
    if title and title not in ('.', '..') and '/' not in title and '\0' not in title and title != RECORD_NAME:
        return title
    return descriptor.digest.split(':', 1)[1] + '.blob'


def plan_directory(manifest: Manifest, dest_dir: str) -> list[tuple[Descriptor, str, bool]]:
    """(layer, path, already there with the right digest) for ``pull_to_directory``; reads only local files."""
    plan = []
    seen: set[str] = set()
    for descriptor in manifest.layers:
        name = safe_title(descriptor)
        if name in seen:
            raise OciError('%s: two layers are titled %r; cannot save both in one directory' % (manifest.reference, name))
        seen.add(name)
        path = os.path.join(dest_dir, name)
        plan.append((descriptor, path, _file_matches(path, descriptor)))
    return plan


def pull_to_directory(reference: str | Reference, dest_dir: str, *, username: str | None = None, password: str | None = None,
                      docker_config: str | None = None, insecure: bool = False, ca_path: str | None = None, validate_certs: bool = True,
                      timeout: float = DEFAULT_TIMEOUT) -> PullResult:
    """Save every layer as ``dest_dir/<title>`` (``<digest>.blob`` without a usable title), each verified and
    atomic as in ``pull_blob_to_file``; files already holding the right content are not downloaded."""
    dest_dir = os.path.abspath(dest_dir)
    ref, client = _connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
    with client:
        manifest = client.get_manifest(ref)
        os.makedirs(dest_dir, exist_ok=True)
        results = []
        count = 0
        for descriptor, path, present in plan_directory(manifest, dest_dir):
            if present:
                results.append(LayerResult(descriptor.digest, descriptor.size, descriptor.media_type, descriptor.title, 'unchanged', path))
                continue
            count += _download(client, ref, descriptor, path, None)
            results.append(LayerResult(descriptor.digest, descriptor.size, descriptor.media_type, descriptor.title, 'downloaded', path))
    changed = any(result.action != 'unchanged' for result in results)
    return PullResult(str(ref), manifest.digest, manifest.media_type, manifest.artifact_type, results, changed, dest_dir, count)
