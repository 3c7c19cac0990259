# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Artifact references (``registry/repository[:tag][@digest]``), digests and the manifest media types.

Standard library only; no network, no files except ``digest_file``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import InvalidReferenceError, UnsupportedError

__all__ = [
    'ACCEPT', 'EMPTY_BLOB_DIGEST', 'MANIFEST_TYPES', 'MEDIA_DOCKER_LIST', 'MEDIA_DOCKER_MANIFEST', 'MEDIA_OCI_INDEX', 'MEDIA_OCI_MANIFEST',
    'TITLE', 'Reference', 'digest_bytes', 'digest_file', 'is_digest', 'parse_digest', 'parse_reference',
]

MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
ACCEPT = ', '.join(MANIFEST_TYPES + (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST))
TITLE = 'org.opencontainers.image.title'

EMPTY_BLOB_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'  # of b'{}'

# Grammar of github.com/distribution/reference, enough to reject typos early.
_DOMAIN = r'(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?'
_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_REFERENCE = re.compile(
    r'^(?P<registry>%s)/(?P<repository>%s(?:/%s)*)' % (_DOMAIN, _COMPONENT, _COMPONENT)
    + r'(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+))?$')
_DIGEST = re.compile(r'^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$')


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


def parse_digest(digest: str) -> tuple[str, str]:
    """``sha256:<hex>`` -> (``sha256``, ``<hex>``); ``UnsupportedError`` for anything else."""
    if not _DIGEST.match(digest or ''):
        raise UnsupportedError('unsupported or malformed digest %r (sha256 and sha512 are supported)' % digest)
    algorithm, value = digest.split(':', 1)
    return algorithm, value


def is_digest(text: str) -> bool:
    """``sha256:<64 hex>`` or ``sha512:<128 hex>``, lower case (what a registry's ``Docker-Content-Digest`` should hold)."""
    return bool(_DIGEST.match(text or ''))


def digest_bytes(data: bytes, algorithm: str = 'sha256') -> str:
    return '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())


def digest_file(path: str, algorithm: str = 'sha256', chunk_size: int = 1024 * 1024) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b''):
            hasher.update(chunk)
    return '%s:%s' % (algorithm, hasher.hexdigest())
