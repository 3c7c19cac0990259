# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

Variants (all with a temporary storage directory and deletes enabled):

- plain HTTP, no auth;
- ``auth='htpasswd'``: Basic auth from a bcrypt htpasswd file;
- ``auth='token'``: the Bearer token flow real registries use (Harbor, GHCR, Docker Hub): the registry
  answers 401 with ``Bearer realm=...,service=...,scope=...`` and trusts JWTs signed by our small token
  service (``TokenServer``, in this process), which checks Basic credentials first;
- ``tls=True``: HTTPS with a certificate from a CA generated per registry (``ca_path``).

It also gives raw access for tests: the storage path of a blob (to tamper with it) and a minimal
push over the HTTP API (``push_raw``) that shares no code with the collection, for interop tests.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import subprocess
import threading
import time
import typing as t
import urllib.parse
import uuid
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .ports import free_port
from .services import Service
from .tls import make_tls_files

USERNAME = 'testuser'
PASSWORD = 'testpass'


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def libtrust_key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key id distribution's token auth matches a JWT ``kid`` against (docker/libtrust's format)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode('ascii').rstrip('=')
    return ':'.join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


class TokenServer:
    """The token service of the Docker/OCI token auth spec, for ``auth='token'`` registries.

    ``GET /token?service=...&scope=repository:name:pull,push`` with Basic credentials returns
    ``{"token": <JWT>}`` granting the requested actions; wrong credentials get 401; no credentials get
    a token without access (as Docker Hub does for private repositories).  Every request is recorded.
    """

    def __init__(self, directory: Path, service: str, issuer: str, users: t.Mapping[str, str]) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(users)
        self.key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'token signer')])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=2)).sign(self.key, hashes.SHA256()))
        self.cert_path = directory / 'token.crt'
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(self.key.public_key())
        self.requests: list[dict[str, t.Any]] = []
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
                return

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                status, body = server.answer(self.headers.get('Authorization'), query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name='token-server')

    @property
    def realm(self) -> str:
        return 'http://127.0.0.1:%d/token' % self.port

    def answer(self, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, dict[str, t.Any]]:
        user = None
        if authorization and authorization.startswith('Basic '):
            name, _sep, password = base64.b64decode(authorization[6:]).decode().partition(':')
            if self.users.get(name) != password:
                self.requests.append({'user': name, 'ok': False, 'scope': query.get('scope', [])})
                return 401, {'errors': [{'code': 'UNAUTHORIZED', 'message': 'bad credentials'}]}
            user = name
        access = []
        for scope in query.get('scope', []):
            kind, _sep, rest = scope.partition(':')
            name, _sep, actions = rest.rpartition(':')
            if user and kind == 'repository':
                access.append({'type': kind, 'name': name, 'actions': [a for a in actions.split(',') if a]})
        self.requests.append({'user': user, 'ok': True, 'scope': query.get('scope', [])})
        now = int(time.time())
        claims = {'iss': self.issuer, 'sub': user or '', 'aud': self.service, 'exp': now + 300, 'nbf': now - 10, 'iat': now,
                  'jti': uuid.uuid4().hex, 'access': access}
        header = {'alg': 'RS256', 'typ': 'JWT', 'kid': self.kid}
        signing_input = _b64url(json.dumps(header).encode()) + '.' + _b64url(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + '.' + _b64url(signature)
        return 200, {'token': token, 'access_token': token, 'expires_in': 300}

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Registry:
    """A running ``docker-registry serve`` with its own storage, config and (optionally) auth and TLS."""

    def __init__(self, directory: Path, auth: str | None = None, tls: bool = False,
                 users: t.Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.storage = self.directory / 'data'
        self.auth = auth
        self.tls = tls
        self.users = dict(users or {USERNAME: PASSWORD})
        self.port = free_port()
        self.ca_path: Path | None = None
        self.token_server: TokenServer | None = None
        self.service: Service | None = None

    @property
    def host(self) -> str:
        return '127.0.0.1:%d' % self.port

    @property
    def url(self) -> str:
        return '%s://%s' % ('https' if self.tls else 'http', self.host)

    @property
    def insecure(self) -> bool:
        """What clients must be told: plain HTTP."""
        return not self.tls

    @property
    def username(self) -> str | None:
        return next(iter(self.users)) if self.auth else None

    @property
    def password(self) -> str | None:
        return self.users[next(iter(self.users))] if self.auth else None

    def client_options(self) -> dict[str, t.Any]:
        """Keyword arguments for the collection's OCI functions (and module options) to reach this registry."""
        options: dict[str, t.Any] = {'insecure': self.insecure}
        if self.ca_path:
            options['ca_path'] = str(self.ca_path)
        if self.auth:
            options.update(username=self.username, password=self.password)
        return options

    def _config(self) -> dict[str, t.Any]:
        http_conf: dict[str, t.Any] = {'addr': self.host, 'secret': uuid.uuid4().hex}
        config: dict[str, t.Any] = {
            'version': 0.1,
            'log': {'level': 'warn', 'accesslog': {'disabled': True}},
            'storage': {'filesystem': {'rootdirectory': str(self.storage)}, 'delete': {'enabled': True},
                        'maintenance': {'uploadpurging': {'enabled': False}}},
            'http': http_conf,
        }
        if self.tls:
            # the CA alone in its directory: skopeo's --cert-dir takes every *.crt/*.key in it
            tls = make_tls_files(self.directory, ca_directory=self.directory / 'ca')
            self.ca_path = tls.ca_cert
            http_conf['tls'] = {'certificate': str(tls.server_cert), 'key': str(tls.server_key)}
        if self.auth == 'htpasswd':
            htpasswd = self.directory / 'htpasswd'
            lines = [subprocess.run(['htpasswd', '-nbB', user, password], check=True, capture_output=True, text=True).stdout.strip()
                     for user, password in self.users.items()]
            htpasswd.write_text('\n'.join(lines) + '\n')
            config['auth'] = {'htpasswd': {'realm': 'test-realm', 'path': str(htpasswd)}}
        elif self.auth == 'token':
            self.token_server = TokenServer(self.directory, service='l3metal-test-registry', issuer='l3metal-test-issuer',
                                            users=self.users).start()
            config['auth'] = {'token': {'realm': self.token_server.realm, 'service': self.token_server.service,
                                        'issuer': self.token_server.issuer, 'rootcertbundle': str(self.token_server.cert_path)}}
        elif self.auth is not None:
            raise ValueError('auth must be None, "htpasswd" or "token"')
        return config

    def start(self) -> Registry:
        config_path = self.directory / 'config.yml'
        config_path.write_text(json.dumps(self._config(), indent=2))  # YAML is a superset of JSON
        self.service = Service('docker-registry', ['docker-registry', 'serve', str(config_path)], self.directory / 'registry.log',
                               port=self.port, ready_url=self.url + '/v2/', ca_file=str(self.ca_path) if self.ca_path else None)
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service:
            self.service.stop()
        if self.token_server:
            self.token_server.stop()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- raw access for tests ----------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob's bytes."""
        algorithm, value = digest.split(':', 1)
        return self.storage / 'docker' / 'registry' / 'v2' / 'blobs' / algorithm / value[:2] / value / 'data'

    def session(self) -> requests.Session:
        """A requests session that reaches this registry (CA, Basic auth for htpasswd; see ``bearer`` for token)."""
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces the test CA
        session.verify = str(self.ca_path) if self.ca_path else True
        if self.auth == 'htpasswd':
            session.auth = (self.username or '', self.password or '')
        return session

    def bearer(self, repository: str, actions: str = 'pull,push') -> dict[str, str]:
        """An Authorization header from the token service (``auth='token'`` only)."""
        assert self.token_server is not None
        response = requests.get(self.token_server.realm, params={'service': self.token_server.service,
                                                                 'scope': 'repository:%s:%s' % (repository, actions)},
                                auth=(self.username or '', self.password or ''), timeout=10, verify=True)
        response.raise_for_status()
        return {'Authorization': 'Bearer ' + response.json()['token']}

    def _headers(self, repository: str) -> dict[str, str]:
        return self.bearer(repository) if self.auth == 'token' else {}

    def push_raw(self, repository: str, tag: str, layers: t.Sequence[tuple[bytes, str, dict[str, str]]],
                 config: bytes = b'{}', config_media_type: str = 'application/vnd.oci.image.config.v1+json',
                 manifest_media_type: str = 'application/vnd.oci.image.manifest.v1+json', annotations: dict[str, str] | None = None) -> str:
        """Push blobs and a manifest through the plain HTTP API (monolithic POST+PUT); returns the manifest digest.

        ``layers`` is ``[(bytes, media type, annotations)]``.  Independent of the collection's code, so a
        test can check that what another client wrote is readable by ours.
        """
        session = self.session()
        headers = self._headers(repository)

        def put_blob(data: bytes) -> str:
            digest = 'sha256:' + hashlib.sha256(data).hexdigest()
            start = session.post('%s/v2/%s/blobs/uploads/' % (self.url, repository), headers=headers, timeout=30)
            assert start.status_code == 202, start.text
            location = urllib.parse.urljoin(self.url, start.headers['Location'])
            location += ('&' if '?' in location else '?') + urllib.parse.urlencode({'digest': digest})
            done = session.put(location, data=data, headers=dict(headers, **{'Content-Type': 'application/octet-stream'}), timeout=60)
            assert done.status_code == 201, done.text
            return digest

        manifest: dict[str, t.Any] = {'schemaVersion': 2, 'mediaType': manifest_media_type,
                                      'config': {'mediaType': config_media_type, 'digest': put_blob(config), 'size': len(config)},
                                      'layers': []}
        for data, media_type, layer_annotations in layers:
            descriptor: dict[str, t.Any] = {'mediaType': media_type, 'digest': put_blob(data), 'size': len(data)}
            if layer_annotations:
                descriptor['annotations'] = layer_annotations
            manifest['layers'].append(descriptor)
        if annotations:
            manifest['annotations'] = annotations
        body = json.dumps(manifest).encode()
        answer = session.put('%s/v2/%s/manifests/%s' % (self.url, repository, tag), data=body,
                             headers=dict(headers, **{'Content-Type': manifest_media_type}), timeout=30)
        assert answer.status_code == 201, answer.text
        return 'sha256:' + hashlib.sha256(body).hexdigest()

    def get_manifest_raw(self, repository: str, reference: str) -> tuple[bytes, dict[str, str]]:
        """The manifest bytes and response headers straight from the HTTP API."""
        session = self.session()
        headers = dict(self._headers(repository) if self.auth == 'token' else {},
                       Accept='application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json')
        response = session.get('%s/v2/%s/manifests/%s' % (self.url, repository, reference), headers=headers, timeout=30)
        response.raise_for_status()
        return response.content, dict(response.headers)

    def get_blob_raw(self, repository: str, digest: str) -> bytes:
        session = self.session()
        response = session.get('%s/v2/%s/blobs/%s' % (self.url, repository, digest), headers=self._headers(repository), timeout=60)
        response.raise_for_status()
        return response.content

    def tags(self, repository: str) -> list[str]:
        session = self.session()
        response = session.get('%s/v2/%s/tags/list' % (self.url, repository), headers=self._headers(repository), timeout=30)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get('tags') or [])
