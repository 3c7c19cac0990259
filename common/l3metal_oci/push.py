# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Push files as an OCI artifact: a deterministic manifest, uploaded with the collection's ``RegistryClient``.

The manifest is composed here, byte for byte, so its digest is known before anything is sent: a
re-push of identical content finds the tag already pointing at that digest and changes nothing, and
check mode can predict the result exactly.  The transfer (blob existence checks, streamed blob
uploads, chunked above ``CHUNKED_ABOVE``, the manifest PUT) goes through the same client, with the same
authentication (Basic, Bearer token flow with push scope, docker config) and TLS settings, as pulls.

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
import typing as t
from dataclasses import dataclass, field

from .client import RegistryClient
from .errors import InvalidReferenceError, OciError, RegistryError
from .reference import MEDIA_OCI_MANIFEST, TITLE, Reference, digest_bytes, parse_reference
from .decompress import CHUNK

EMPTY_CONFIG_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json'
UNKNOWN_CONFIG_MEDIA_TYPE = 'application/vnd.unknown.config.v1+json'
EMPTY_JSON = b'{}'
# Larger blobs go in PATCH chunks: a proxy in front of a registry may cap one request body, and an interrupted
# chunk costs less to send again.  Smaller ones go in one streamed PUT (fewer round trips).
CHUNKED_ABOVE = 64 * 1024 * 1024
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
        uploaded = _upload(client, tagged, plan)
        now = client.resolve(tagged)
        if now != plan.digest:
            raise RegistryError('after the push %s points to %s, not the pushed manifest %s' % (tagged, now, plan.digest))
    return PushResult(True, plan.digest, previous, manifest, uploaded)


def _upload(client: RegistryClient, ref: Reference, plan: PushPlan) -> list[str]:
    """Blobs the registry does not have yet (layers, then the config), then the manifest: what the
    distribution spec's push is.  A blob already present (even from another artifact) is not sent again."""
    uploaded: list[str] = []
    for layer in plan.layers:
        digest, size = layer.descriptor['digest'], layer.descriptor['size']
        if client.blob_exists(ref, digest):
            continue
        client.upload_blob(ref, layer.path, digest, size, chunk_size=UPLOAD_CHUNK if size > CHUNKED_ABOVE else None)
        uploaded.append(digest)
    if not client.blob_exists(ref, plan.config['digest']):
        client.upload_bytes(ref, EMPTY_JSON, plan.config['digest'])
    client.put_manifest(ref, plan.manifest, MEDIA_OCI_MANIFEST)
    return uploaded
