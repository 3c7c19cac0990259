# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Push files as an OCI artifact: a deterministic manifest, uploaded with oras-py.

The manifest is composed here, byte for byte, so its digest is known before anything is sent: a
re-push of identical content finds the tag already pointing at that digest and changes nothing, and
check mode can predict the result exactly.  oras-py does the transfer (blob existence checks, blob
uploads, manifest PUT, its auth backends); ``RegistryClient`` from ``_oci`` does the read-only calls.

Manifest shape (OCI image manifest v1.1, readable by OCI 1.0 clients):

- ``artifact_type`` given: ``"artifactType": <it>`` and the empty config descriptor
  (``application/vnd.oci.empty.v1+json``, ``{}``), as the OCI 1.1 image spec recommends for artifacts.
- not given: config ``application/vnd.unknown.config.v1+json`` over ``{}`` (what oras-py and oras 1.0 write).
- one layer per file, ``org.opencontainers.image.title`` = the file's base name unless given, per-layer
  media type from the caller or guessed from the extension; manifest ``annotations`` as given.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import typing as t
from dataclasses import dataclass, field

from ._oci import CHUNK, MEDIA_OCI_MANIFEST, TITLE, Reference, RegistryClient, digest_bytes, parse_reference
from ._oci_errors import AuthenticationError, InvalidReferenceError, OciError, RegistryError

try:
    import oras.client
    HAS_ORAS = True
    ORAS_IMPORT_ERROR: ImportError | None = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_ORAS = False
    ORAS_IMPORT_ERROR = _exc

EMPTY_CONFIG_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json'
UNKNOWN_CONFIG_MEDIA_TYPE = 'application/vnd.unknown.config.v1+json'
EMPTY_JSON = b'{}'
CHUNKED_ABOVE = 64 * 1024 * 1024  # oras-py's single PUT reads the whole file into memory; larger blobs go in PATCH chunks
UPLOAD_CHUNK = 16 * 1024 * 1024

_EXTENSION_TYPES = (
    ('.tar.gz', 'application/vnd.oci.image.layer.v1.tar+gzip'),
    ('.tgz', 'application/vnd.oci.image.layer.v1.tar+gzip'),
    ('.tar.zst', 'application/vnd.oci.image.layer.v1.tar+zstd'),
    ('.tar.zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'),
    ('.tar', 'application/vnd.oci.image.layer.v1.tar'),
    ('.json', 'application/json'),
    ('.wim', 'application/x-ms-wim'),
    ('.iso', 'application/x-iso9660-image'),
)


def guess_media_type(path: str) -> str:
    lower = path.lower()
    for suffix, media_type in _EXTENSION_TYPES:
        if lower.endswith(suffix):
            return media_type
    return 'application/octet-stream'


@dataclass
class PushFile:
    """One file to push as a layer."""

    path: str
    media_type: str | None = None
    title: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class PlannedLayer:
    path: str
    descriptor: dict[str, t.Any]


@dataclass
class PushPlan:
    manifest: bytes
    digest: str
    config: dict[str, t.Any]
    layers: list[PlannedLayer]

    @property
    def layer_descriptors(self) -> list[dict[str, t.Any]]:
        return [layer.descriptor for layer in self.layers]


@dataclass
class PushResult:
    changed: bool
    digest: str
    previous_digest: str | None
    manifest: dict[str, t.Any]
    uploaded: list[str]


def _file_digest(path: str) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            hasher.update(chunk)
            size += len(chunk)
    return 'sha256:' + hasher.hexdigest(), size


def plan_push(files: t.Sequence[PushFile], artifact_type: str | None = None, annotations: t.Mapping[str, str] | None = None) -> PushPlan:
    """Hash the files and compose the manifest bytes (deterministic: sorted keys, no whitespace)."""
    if not files:
        raise OciError('files: give at least one file to push')
    layers: list[PlannedLayer] = []
    titles: set[str] = set()
    for item in files:
        if not os.path.isfile(item.path):
            raise OciError('files: %s is not a regular file' % item.path)
        digest, size = _file_digest(item.path)
        title = item.title or os.path.basename(item.path)
        if title in titles:
            raise OciError('files: two layers would have the title %r; give one of them another title' % title)
        titles.add(title)
        layer_annotations = {TITLE: title}
        layer_annotations.update({str(k): str(v) for k, v in item.annotations.items()})
        layers.append(PlannedLayer(item.path, {'mediaType': item.media_type or guess_media_type(item.path), 'digest': digest,
                                               'size': size, 'annotations': layer_annotations}))
    config = {'mediaType': EMPTY_CONFIG_MEDIA_TYPE if artifact_type else UNKNOWN_CONFIG_MEDIA_TYPE,
              'digest': digest_bytes(EMPTY_JSON), 'size': len(EMPTY_JSON)}
    manifest: dict[str, t.Any] = {'schemaVersion': 2, 'mediaType': MEDIA_OCI_MANIFEST}
    if artifact_type:
        manifest['artifactType'] = artifact_type
    manifest['config'] = config
    manifest['layers'] = [layer.descriptor for layer in layers]
    if annotations:
        manifest['annotations'] = {str(k): str(v) for k, v in annotations.items()}
    raw = json.dumps(manifest, sort_keys=True, separators=(',', ':')).encode('utf-8')
    return PushPlan(raw, digest_bytes(raw), config, layers)


def _auth_backend(client: RegistryClient) -> str:
    """oras-py needs to be told: ``basic`` for a Basic challenge (its token backend would treat the realm as
    a token server), ``token`` for Bearer or no challenge."""
    try:
        response = client.session.get(client.base_url + '/v2/', timeout=client.timeout, verify=client.verify)
    except Exception:  # pylint: disable=broad-exception-caught  # the real call below reports the error
        return 'token'
    scheme = response.headers.get('WWW-Authenticate', '').split(' ', 1)[0].lower()
    response.close()
    return 'basic' if scheme == 'basic' else 'token'


def _check(response: t.Any, what: str) -> None:
    status = getattr(response, 'status_code', None)
    if status in (401, 403):
        raise AuthenticationError('%s: the registry refused the credentials (HTTP %s)' % (what, status), status=status)
    if status not in (200, 201, 202):
        detail = ''
        try:
            detail = '; '.join('%s: %s' % (e.get('code'), e.get('message')) for e in response.json().get('errors', []))
        except Exception:  # pylint: disable=broad-exception-caught
            detail = getattr(response, 'reason', '') or ''
        raise RegistryError('%s: HTTP %s %s' % (what, status, detail), status=status)


def push_artifact(reference: str | Reference, files: t.Sequence[PushFile], *, artifact_type: str | None = None,
                  annotations: t.Mapping[str, str] | None = None, check_mode: bool = False, username: str | None = None,
                  password: str | None = None, docker_config: str | None = None, insecure: bool = False, ca_path: str | None = None,
                  validate_certs: bool = True, timeout: float = 60.0) -> PushResult:
    """Push ``files`` as one artifact to ``reference`` (which must carry a tag); idempotent by manifest digest."""
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    if not ref.tag:
        raise InvalidReferenceError('reference %s: pushing needs a tag (registry/repo:tag)' % ref)
    plan = plan_push(files, artifact_type, annotations)
    if ref.digest and ref.digest != plan.digest:
        raise OciError('reference %s pins digest %s, but the files give manifest %s' % (ref, ref.digest, plan.digest))
    tagged = Reference(ref.registry, ref.repository, ref.tag)
    manifest = json.loads(plan.manifest)
    with RegistryClient(ref.registry, username=username, password=password, docker_config=docker_config, insecure=insecure,
                        ca_path=ca_path, validate_certs=validate_certs, timeout=timeout) as client:
        previous = client.resolve(tagged)
        if previous == plan.digest:
            return PushResult(False, plan.digest, previous, manifest, [])
        if check_mode:
            return PushResult(True, plan.digest, previous, manifest, [])
        if not HAS_ORAS:
            raise OciError('pushing needs the Python library "oras" (pip install oras)')
        uploaded = _upload(client, tagged, plan, insecure=insecure, tls_verify=ca_path or validate_certs)
        now = client.resolve(tagged)
        if now != plan.digest:
            raise RegistryError('after the push %s points to %s, not the pushed manifest %s' % (tagged, now, plan.digest))
    return PushResult(True, plan.digest, previous, manifest, uploaded)


def _upload(client: RegistryClient, ref: Reference, plan: PushPlan, insecure: bool, tls_verify: bool | str) -> list[str]:
    backend = _auth_backend(client)
    oras_client = oras.client.OrasClient(hostname=ref.registry, insecure=insecure, tls_verify=tls_verify, auth_backend=backend)
    if client.credentials is not None:
        oras_client.auth.set_basic_auth(client.credentials.username, client.credentials.password)
    if backend == 'token':
        # oras-py 0.2 keeps the first token it gets (pull scope, from a blob HEAD) and does not ask again when
        # the upload answers "insufficient scope"; hand it a pull,push token up front.
        token = client.bearer_token(ref, push=True)
        if token:
            oras_client.auth.token = token
    container = oras_client.get_container('%s/%s:%s' % (ref.registry, ref.repository, ref.tag))
    uploaded: list[str] = []
    what = 'push to %s' % ref
    try:
        for layer in plan.layers:
            if oras_client.blob_exists(layer.descriptor, container):
                continue
            chunked = layer.descriptor['size'] > CHUNKED_ABOVE
            _check(oras_client.upload_blob(layer.path, container, layer.descriptor, do_chunked=chunked, chunk_size=UPLOAD_CHUNK),
                   '%s: blob %s (%s)' % (what, layer.descriptor['digest'], layer.path))
            uploaded.append(layer.descriptor['digest'])
        with tempfile.TemporaryDirectory(prefix='oci-push-') as scratch:
            config_path = os.path.join(scratch, 'config.json')
            with open(config_path, 'wb') as handle:
                handle.write(EMPTY_JSON)
            _check(oras_client.upload_blob(config_path, container, plan.config), '%s: config blob' % what)
        response = oras_client.do_request('%s://%s' % (oras_client.prefix, container.manifest_url()), 'PUT', data=plan.manifest,
                                          headers={'Content-Type': MEDIA_OCI_MANIFEST})
        _check(response, '%s: manifest' % what)
    except OciError:
        raise
    except ValueError as exc:  # oras-py raises ValueError for refused authentication and odd answers
        text = str(exc)
        if 'Unauthorized' in text or 'authentication' in text.lower():
            raise AuthenticationError('%s: %s; check username/password or docker_config' % (what, text)) from None
        raise RegistryError('%s: %s' % (what, text)) from None
    except Exception as exc:  # pylint: disable=broad-exception-caught  # requests errors, TLS, connection
        raise RegistryError('%s: %s' % (what, exc)) from None
    return uploaded
