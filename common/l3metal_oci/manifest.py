# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifests and their content descriptors, parsed from verified bytes; which layers are tar archives.

Standard library only; the bytes come from ``RegistryClient.get_manifest``, which checked their digest.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass, field

from .errors import RegistryError, UnsupportedError
from .reference import MANIFEST_TYPES, MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, TITLE, Reference, parse_digest

__all__ = ['MAX_MANIFEST', 'Descriptor', 'Manifest', 'is_tar_layer']

MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended manifest limit


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
        parse_digest(data['digest'])
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


def is_tar_layer(layer: Descriptor) -> bool:
    """Tar-like by media type or title (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.zst``, ``.tar.xz``)."""
    media = layer.media_type
    if 'tar' in media.split('/')[-1] or media.startswith('application/vnd.docker.image.rootfs.diff.tar'):
        return True
    title = (layer.title or '').lower()
    return title.endswith(('.tar', '.tar.gz', '.tgz', '.tar.zst', '.tar.zstd', '.tar.xz', '.txz'))
