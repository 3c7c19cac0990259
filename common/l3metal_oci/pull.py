# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pulls: an artifact's tar layers streamed into a directory, one layer to a file, every layer to files.

``pull_and_unpack`` (staged, verified, then moved into place), ``pull_blob_to_file`` and
``pull_to_directory`` (each file replaced atomically after its digest matched), and the record
``.oci-artifact.json`` that makes an unpack idempotent.  The downloads are ``RegistryClient``'s
verified streams; the extraction is ``unpack.py``'s.

Standard library plus ``requests`` (through ``client.py``); no Ansible imports.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import typing as t
from dataclasses import asdict, dataclass

from .client import DEFAULT_TIMEOUT, RegistryClient, connect
from .errors import CorruptStreamError, NotFoundError, OciError
from .manifest import Descriptor, Manifest, is_tar_layer
from .reference import Reference, digest_file, parse_digest
from .unpack import CHUNK, ExtractStats, TarExtractor, merge_tree, mount_points_below

__all__ = [
    'RECORD_NAME', 'LayerResult', 'PullResult', 'plan_directory', 'pull_and_unpack', 'pull_blob_to_file', 'pull_to_directory', 'read_record',
    'safe_title',
]

RECORD_NAME = '.oci-artifact.json'


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
    ref, client = connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
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
    ref, client = connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
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
        return digest_file(path, parse_digest(descriptor.digest)[0]) == descriptor.digest
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
    ref, client = connect(reference, username, password, docker_config, insecure, ca_path, validate_certs, timeout)
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
