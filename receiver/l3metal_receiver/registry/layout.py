# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Storage of the embedded registry: an OCI image layout directory (image-spec 1.1, "image-layout").

::

    DIR/oci-layout            {"imageLayoutVersion": "1.0.0"}
    DIR/index.json            an image index: one descriptor per tag
    DIR/blobs/sha256/<hex>    every blob and every manifest, named by its digest (sha512 too)
    DIR/.uploads/<id>         upload sessions in progress (not part of the layout; emptied at start)

So a directory written by ``skopeo copy ... oci:DIR:REPO:TAG`` (or ``oras push --oci-layout``) is served as
it is, and what the receiver stores is read by those tools offline.

Repositories and tags: a layout has one ``index.json`` and no repositories.  A tag ``TAG`` of repository
``REPO`` is the index entry whose ``org.opencontainers.image.ref.name`` annotation is ``REPO:TAG`` (the
ref-name grammar allows ``/`` and ``:``; a tag holds no ``:``, so the last ``:`` splits).  A bare ref name
without ``:`` (``skopeo copy ... oci:DIR:latest``) belongs to the ``default_repository`` when one is set,
and is not served otherwise.  Entries the receiver does not understand are kept as they are.  Blobs form
one content store: a digest is readable through any repository name, so a cross-repository mount always
succeeds when the blob exists.

Crash safety: every file becomes visible by ``rename(2)`` of a complete, fsynced temporary file in the
same directory, followed by an fsync of the directory; a blob or manifest is renamed into ``blobs/`` only
after its digest was checked.  A kill -9 leaves at most a temporary file (``.uploads/*``, ``.*.tmp``),
which the next start removes.  Content-addressed names make concurrent pushes of the same blob safe:
both renames put the same bytes under the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import typing as t
import uuid
from pathlib import Path

from .errors import RegistryError, digest_invalid

REF_NAME = 'org.opencontainers.image.ref.name'
LAYOUT_VERSION = {'imageLayoutVersion': '1.0.0'}

MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MANIFEST_MEDIA_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST)
INDEX_MEDIA_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MAX_MANIFEST = 4 * 1024 * 1024  # distribution's limit too

# Distribution spec grammar (section "Pulling manifests").
NAME_PATTERN = r'[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*'
TAG_PATTERN = r'[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'
DIGEST_PATTERN = r'[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+'
NAME = re.compile(NAME_PATTERN)
TAG = re.compile(TAG_PATTERN)
_HEX = {'sha256': re.compile(r'[a-f0-9]{64}'), 'sha512': re.compile(r'[a-f0-9]{128}')}
UPLOADS_DIR = '.uploads'


def parse_digest(value: str) -> tuple[str, str]:
    """(algorithm, hex) of a digest the layout can store, or ``DIGEST_INVALID``."""
    algorithm, sep, encoded = value.partition(':')
    if not sep or algorithm not in _HEX:
        raise digest_invalid('digest %r: only sha256:<64 hex> and sha512:<128 hex> are supported' % value)
    if not _HEX[algorithm].fullmatch(encoded):
        raise digest_invalid('digest %r: %s needs %d lowercase hex characters' % (value, algorithm, 64 if algorithm == 'sha256' else 128))
    return algorithm, encoded


def is_digest(value: str) -> bool:
    return ':' in value


def digest_of(data: bytes, algorithm: str = 'sha256') -> str:
    return '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())


def split_ref_name(value: str, default_repository: str | None) -> tuple[str, str] | None:
    """(repository, tag) an index entry's ref name stands for, or None when it names none."""
    repository, sep, tag = value.rpartition(':')
    if sep:
        if NAME.fullmatch(repository) and TAG.fullmatch(tag):
            return repository, tag
        return None
    if default_repository and TAG.fullmatch(value):
        return default_repository, value
    return None


def manifest_media_type(raw: bytes) -> str | None:
    """The media type a manifest document declares (or implies: ``mediaType`` is optional in OCI), None if it is no manifest."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get('schemaVersion') != 2:
        return None
    declared = doc.get('mediaType')
    if declared in MANIFEST_MEDIA_TYPES:
        return t.cast(str, declared)
    if declared is None:
        if isinstance(doc.get('manifests'), list):
            return MEDIA_OCI_INDEX
        if isinstance(doc.get('config'), dict):
            return MEDIA_OCI_MANIFEST
    return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """``path`` holds ``data`` or what it held before, never a part (temporary file, fsync, rename, fsync of the directory)."""
    tmp = path.parent / ('.%s.%s.tmp' % (path.name, uuid.uuid4().hex))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Layout:
    """One OCI image layout directory.  Thread-safe: index changes hold a lock; blobs need none."""

    def __init__(self, root: Path, default_repository: str | None = None) -> None:
        self.root = Path(root)
        self.default_repository = default_repository
        self.uploads = self.root / UPLOADS_DIR
        self._lock = threading.RLock()
        self._signature: tuple[int, int, int] | None = None
        self._index: dict[str, t.Any] = {}
        self._tags: dict[tuple[str, str], dict[str, t.Any]] = {}
        self._referrers: dict[str, list[dict[str, t.Any]]] = {}  # subject digest -> descriptors of the manifests naming it
        self._subject_of: dict[str, dict[str, t.Any] | None] = {}  # manifest digest -> its referrer descriptor (content is immutable)

    # -- start -----------------------------------------------------------------------------------------
    def open(self) -> int:
        """Create what is missing (an empty layout), remove what a crash left behind; the number of leftovers removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / 'blobs' / 'sha256').mkdir(parents=True, exist_ok=True)
        if not (self.root / 'oci-layout').exists():
            atomic_write(self.root / 'oci-layout', json.dumps(LAYOUT_VERSION).encode('utf-8'))
        else:
            self._check_layout_version()
        if not (self.root / 'index.json').exists():
            atomic_write(self.root / 'index.json', self._dump({'schemaVersion': 2, 'mediaType': MEDIA_OCI_INDEX, 'manifests': []}))
        removed = 0
        if self.uploads.exists():
            for leftover in self.uploads.iterdir():
                leftover.unlink()
                removed += 1
        self.uploads.mkdir(exist_ok=True, mode=0o700)
        for directory in [self.root] + [p for p in (self.root / 'blobs').iterdir() if p.is_dir()]:
            for leftover in directory.glob('.*.tmp'):
                leftover.unlink()
                removed += 1
        self._reload()
        return removed

    def _check_layout_version(self) -> None:
        try:
            version = json.loads((self.root / 'oci-layout').read_bytes()).get('imageLayoutVersion')
        except (ValueError, AttributeError):
            version = None
        if not isinstance(version, str) or not version.startswith('1.'):
            raise ValueError('%s/oci-layout: not an OCI image layout 1.x (imageLayoutVersion %r)' % (self.root, version))

    # -- index.json ------------------------------------------------------------------------------------
    @staticmethod
    def _dump(doc: t.Any) -> bytes:
        return json.dumps(doc, indent=None, separators=(',', ':')).encode('utf-8')

    def _stat_index(self) -> tuple[int, int, int]:
        st = os.stat(self.root / 'index.json')
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _reload(self) -> None:
        """Read index.json again (another tool may have replaced it while the receiver ran, e.g. skopeo copy to oci:)."""
        with self._lock:
            signature = self._stat_index()
            raw = (self.root / 'index.json').read_bytes()
            try:
                index = json.loads(raw)
            except ValueError as exc:
                raise ValueError('%s/index.json is not JSON: %s' % (self.root, exc)) from None
            if not isinstance(index, dict) or not isinstance(index.get('manifests', []), list):
                raise ValueError('%s/index.json is not an image index (no "manifests" list)' % self.root)
            index.setdefault('manifests', [])
            tags: dict[tuple[str, str], dict[str, t.Any]] = {}
            for entry in index['manifests']:
                if not isinstance(entry, dict):
                    continue
                name = (entry.get('annotations') or {}).get(REF_NAME)
                mapped = split_ref_name(name, self.default_repository) if isinstance(name, str) else None
                if mapped and isinstance(entry.get('digest'), str):
                    tags[mapped] = entry  # a later entry with the same name wins, as in skopeo
            referrers: dict[str, list[dict[str, t.Any]]] = {}
            for entry in index['manifests']:
                found = self._referrer(entry) if isinstance(entry, dict) else None
                if found is not None:
                    subject, descriptor = found
                    if all(d['digest'] != descriptor['digest'] for d in referrers.get(subject, [])):
                        referrers.setdefault(subject, []).append(descriptor)
            self._index, self._tags, self._referrers, self._signature = index, tags, referrers, signature

    def _referrer(self, entry: dict[str, t.Any]) -> tuple[str, dict[str, t.Any]] | None:
        """(subject digest, descriptor for the referrers list) of the manifest an index entry names, when it has a ``subject``."""
        digest = entry.get('digest')
        if not isinstance(digest, str) or entry.get('mediaType') not in MANIFEST_MEDIA_TYPES:
            return None
        if digest not in self._subject_of:
            descriptor: dict[str, t.Any] | None = None
            try:
                found = self.read_manifest(digest)
            except RegistryError:
                found = None
            if found is not None:
                doc = json.loads(found[0])
                subject = doc.get('subject')
                if isinstance(subject, dict) and isinstance(subject.get('digest'), str):
                    descriptor = {'mediaType': found[1], 'digest': digest, 'size': len(found[0]), 'subject': subject['digest']}
                    artifact_type = doc.get('artifactType') or (doc.get('config') or {}).get('mediaType')
                    if isinstance(artifact_type, str):
                        descriptor['artifactType'] = artifact_type
                    if isinstance(doc.get('annotations'), dict):
                        descriptor['annotations'] = doc['annotations']
            self._subject_of[digest] = descriptor
        cached = self._subject_of[digest]
        if cached is None:
            return None
        descriptor = {k: v for k, v in cached.items() if k != 'subject'}
        return cached['subject'], descriptor

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[dict[str, t.Any]]:
        """Descriptors of the stored manifests whose ``subject`` is ``digest`` (OCI 1.1 referrers), optionally of one artifact type."""
        self._fresh()
        found = self._referrers.get(digest, [])
        return [dict(d) for d in found if artifact_type is None or d.get('artifactType') == artifact_type]

    def add_untagged(self, media_type: str, digest: str, size: int) -> None:
        """An index entry without a ref name for a manifest pushed by digest that names a ``subject``, so the layout
        keeps it reachable (image-spec: index.json lists the layout's roots) and the referrers list finds it."""
        with self._lock:
            self._fresh()
            if any(isinstance(e, dict) and e.get('digest') == digest and not self._names(e) for e in self._index['manifests']):
                return
            self._write_index(lambda e: True, {'mediaType': media_type, 'digest': digest, 'size': size})

    def _fresh(self) -> None:
        try:
            if self._stat_index() != self._signature:
                self._reload()
        except FileNotFoundError:
            pass  # between another tool's unlink and rename: keep what we know

    def resolve(self, repository: str, tag: str) -> dict[str, t.Any] | None:
        """The index descriptor of ``repository:tag``, or None."""
        self._fresh()
        entry = self._tags.get((repository, tag))
        return dict(entry) if entry is not None else None

    def tags(self, repository: str) -> list[str]:
        self._fresh()
        return sorted(tag for repo, tag in self._tags if repo == repository)

    def repositories(self) -> list[str]:
        self._fresh()
        return sorted({repo for repo, _tag in self._tags})

    def _write_index(self, keep: t.Callable[[dict[str, t.Any]], bool], add: dict[str, t.Any] | None = None) -> int:
        """Rewrite index.json without the entries ``keep`` refuses, plus ``add``; the number of entries removed."""
        with self._lock:
            self._fresh()
            entries = [e for e in self._index['manifests'] if not isinstance(e, dict) or keep(e)]
            removed = len(self._index['manifests']) - len(entries)
            if add is not None:
                entries.append(add)
            index = dict(self._index, manifests=entries)
            atomic_write(self.root / 'index.json', self._dump(index))
            self._reload()
            return removed

    def _names(self, entry: dict[str, t.Any]) -> tuple[str, str] | None:
        name = (entry.get('annotations') or {}).get(REF_NAME)
        return split_ref_name(name, self.default_repository) if isinstance(name, str) else None

    def set_tag(self, repository: str, tag: str, media_type: str, digest: str, size: int, artifact_type: str | None = None) -> None:
        """Point ``repository:tag`` at a stored manifest (replacing the entry of that name, if any)."""
        descriptor: dict[str, t.Any] = {'mediaType': media_type, 'digest': digest, 'size': size}
        if artifact_type:
            descriptor['artifactType'] = artifact_type
        descriptor['annotations'] = {REF_NAME: '%s:%s' % (repository, tag)}
        self._write_index(lambda e: self._names(e) != (repository, tag), descriptor)

    def delete_tag(self, repository: str, tag: str) -> bool:
        return self._write_index(lambda e: self._names(e) != (repository, tag)) > 0

    def delete_digest(self, repository: str, digest: str) -> bool:
        """Remove every tag of ``repository`` that points at ``digest`` (the blob stays: other names may use it)."""
        def keep(entry: dict[str, t.Any]) -> bool:
            if entry.get('digest') != digest:
                return True
            names = self._names(entry)
            has_name = REF_NAME in (entry.get('annotations') or {})
            return not ((names is not None and names[0] == repository) or not has_name)  # untagged entries: referrers
        return self._write_index(keep) > 0

    # -- blobs -----------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, encoded = parse_digest(digest)
        return self.root / 'blobs' / algorithm / encoded

    def blobs_root(self) -> str:
        """The resolved ``blobs/`` directory (what a served blob must lie beneath)."""
        return os.path.realpath(self.root / 'blobs')

    def blob_stat(self, digest: str) -> os.stat_result | None:
        try:
            return self.blob_path(digest).stat()
        except FileNotFoundError:
            return None

    def commit_blob(self, tmp: Path, digest: str) -> None:
        """Make the verified temporary file ``tmp`` (fsynced by its writer) the blob ``digest``.

        Already there: the temporary file goes (same name, same bytes).  Otherwise one rename, then an fsync
        of the directory so the name survives a power loss."""
        target = self.blob_path(digest)
        if target.exists():
            tmp.unlink()
            return
        target.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        fsync_dir(target.parent)

    def store_bytes(self, data: bytes, digest: str) -> None:
        """Store a small blob (a manifest) whose digest the caller checked."""
        target = self.blob_path(digest)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        atomic_write(target, data)

    def read_manifest(self, digest: str) -> tuple[bytes, str] | None:
        """(bytes, media type) of the manifest stored as ``digest``; None when there is no such manifest (or
        the blob is no manifest).  A stored manifest that no longer hashes to its name raises ``RegistryError``."""
        path = self.blob_path(digest)
        try:
            with open(path, 'rb') as handle:
                raw = handle.read(MAX_MANIFEST + 1)
        except (FileNotFoundError, IsADirectoryError):
            return None
        if len(raw) > MAX_MANIFEST:
            return None
        algorithm = digest.partition(':')[0]
        actual = digest_of(raw, algorithm)
        if actual != digest:
            raise RegistryError(500, 'MANIFEST_INVALID', 'stored manifest %s is corrupt: its content hashes to %s; '
                                'restore it or push it again (python -m l3metal_receiver.registry verify %s)' % (digest, actual, self.root))
        media_type = manifest_media_type(raw)
        return (raw, media_type) if media_type else None


def verify_layout(root: Path, default_repository: str | None = None) -> list[str]:
    """Every problem of the layout at ``root``: blobs whose content does not hash to their name, tags and
    manifests that refer to missing or different-sized blobs.  Empty: the layout is sound."""
    problems: list[str] = []
    layout = Layout(root, default_repository)
    layout._reload()
    blobs = root / 'blobs'
    for directory in sorted(p for p in blobs.iterdir() if p.is_dir()):
        algorithm = directory.name
        if algorithm not in _HEX:
            continue
        for path in sorted(directory.iterdir()):
            if path.name.startswith('.'):
                continue
            hasher = hashlib.new(algorithm)
            with open(path, 'rb') as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b''):
                    hasher.update(chunk)
            if hasher.hexdigest() != path.name:
                problems.append('blob %s:%s: content hashes to %s:%s (tampered or damaged)' % (algorithm, path.name, algorithm, hasher.hexdigest()))
    seen: set[str] = set()

    def check(descriptor: t.Any, where: str) -> None:
        if not isinstance(descriptor, dict) or not isinstance(descriptor.get('digest'), str):
            problems.append('%s: not a descriptor' % where)
            return
        digest = descriptor['digest']
        try:
            st = layout.blob_stat(digest)
        except RegistryError:
            problems.append('%s: digest %s is not one this layout stores' % (where, digest))
            return
        if descriptor.get('urls'):
            return  # a foreign layer: not expected locally
        if st is None:
            problems.append('%s: blob %s is missing' % (where, digest))
            return
        if descriptor.get('size') != st.st_size:
            problems.append('%s: blob %s has %d bytes, the descriptor says %r' % (where, digest, st.st_size, descriptor.get('size')))
        if digest in seen or descriptor.get('mediaType') not in MANIFEST_MEDIA_TYPES:
            return
        seen.add(digest)
        try:
            found = layout.read_manifest(digest)
        except RegistryError:
            return  # already reported as a tampered blob
        if found is None:
            problems.append('%s: %s is not a manifest' % (where, digest))
            return
        doc = json.loads(found[0])
        for key, child in [('config', doc.get('config'))] + [('layers', layer) for layer in doc.get('layers') or []] + \
                [('manifests', sub) for sub in doc.get('manifests') or []]:
            if child is not None:
                check(child, '%s -> %s' % (where, key))

    for entry in layout._index.get('manifests', []):
        name = (entry.get('annotations') or {}).get(REF_NAME) if isinstance(entry, dict) else None
        check(entry, 'index.json %s' % (name or (entry.get('digest') if isinstance(entry, dict) else entry)))
    return problems
