# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``/v2/`` routes: the OCI Distribution Specification 1.1 (pull, push, content discovery, deletion).

One aiohttp route takes every ``/v2/...`` request and this module dispatches on the path with the spec's
grammar (a repository name may hold ``/``, so ``<name>/manifests/<reference>`` is matched as a whole).
Every error is the spec's JSON error document; nothing here raises into the receiver's job-API middleware.

Blobs go out through the receiver's media path (``media.MediaResponse``: sendfile, Range/206, HEAD, 416 as
nginx answers), with ``Docker-Content-Digest``.  Manifests are read into memory (at most 4 MiB), checked
against their digest and answered with the media type they declare; there is no conversion between
manifest formats, so whatever the client lists in ``Accept`` it gets the stored document (clients verify
the digest, and a conversion would change it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import typing as t
import urllib.parse

from aiohttp import hdrs, web

from ..api import BODY_TIMEOUT_KEY
from ..media import MediaResponse, open_regular_file
from .auth import AUTH_ACTIONS, Authenticator
from .errors import API_VERSION, API_VERSION_HEADER, RegistryError, blob_unknown, digest_invalid, manifest_unknown, name_unknown, unsupported
from .layout import (DIGEST_PATTERN, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MAX_MANIFEST, NAME_PATTERN, TAG_PATTERN, Layout, digest_of,
                     manifest_media_type, parse_digest)
from .uploads import Uploads, parse_content_range

LOG = logging.getLogger('l3metal_receiver.registry')

_ROUTES = [
    ('base', re.compile(r'')),
    ('catalog', re.compile(r'_catalog')),
    ('tags', re.compile(r'(?P<name>%s)/tags/list' % NAME_PATTERN)),
    ('manifest', re.compile(r'(?P<name>%s)/manifests/(?P<reference>%s|%s)' % (NAME_PATTERN, TAG_PATTERN, DIGEST_PATTERN))),
    ('upload_start', re.compile(r'(?P<name>%s)/blobs/uploads/?' % NAME_PATTERN)),
    ('upload', re.compile(r'(?P<name>%s)/blobs/uploads/(?P<upload>[0-9a-f-]{36})' % NAME_PATTERN)),
    ('blob', re.compile(r'(?P<name>%s)/blobs/(?P<digest>%s)' % (NAME_PATTERN, DIGEST_PATTERN))),
    ('referrers', re.compile(r'(?P<name>%s)/referrers/(?P<digest>%s)' % (NAME_PATTERN, DIGEST_PATTERN))),
]
MAX_PAGE = 10000


class Registry:
    """The handlers of one embedded registry (its layout, upload sessions and access rule)."""

    def __init__(self, layout: Layout, authenticator: Authenticator, allow_delete: bool = False) -> None:
        self.layout = layout
        self.uploads = Uploads(layout)
        self.auth = authenticator
        self.allow_delete = allow_delete

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._dispatch(request)
        except RegistryError as exc:
            response = exc.response()
        except Exception:  # pylint: disable=broad-exception-caught
            LOG.exception('unexpected error on %s %s', request.method, request.path)
            response = RegistryError(500, 'UNKNOWN', 'internal error; see the receiver log').response()
        response.headers.setdefault(API_VERSION_HEADER, API_VERSION)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get('tail', '')
        routed = _route(tail)
        if routed is None:
            if tail.split('/', 1)[0] and not re.fullmatch(NAME_PATTERN, tail.rsplit('/', 2)[0]):
                raise RegistryError(400, 'NAME_INVALID', 'invalid repository name or path: /v2/%s' % tail)
            raise RegistryError(404, 'NOT_FOUND', 'no such endpoint: %s /v2/%s' % (request.method, tail))
        kind, match = routed
        method = request.method
        action = 'ping' if kind == 'base' else AUTH_ACTIONS.get(method, 'push')
        await self.auth.require(request.headers.get(hdrs.AUTHORIZATION), action)
        params = match.groupdict()
        handler = getattr(self, '_%s_%s' % (kind, method.lower()), None)
        if handler is None and method == 'HEAD':
            handler = getattr(self, '_%s_get' % kind, None)
        if handler is None:
            raise RegistryError(405, 'UNSUPPORTED', 'method %s is not allowed on /v2/%s' % (method, tail))
        return t.cast(web.StreamResponse, await handler(request, **params))

    # -- discovery ---------------------------------------------------------------------------------------
    async def _base_get(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    async def _catalog_get(self, request: web.Request) -> web.StreamResponse:
        names, link = _page(self.layout.repositories(), request, '/v2/_catalog')
        return web.json_response({'repositories': names}, headers=link)

    async def _tags_get(self, request: web.Request, name: str) -> web.StreamResponse:
        tags = self.layout.tags(name)
        if not tags:
            raise name_unknown(name)
        page, link = _page(tags, request, '/v2/%s/tags/list' % name)
        return web.json_response({'name': name, 'tags': page}, headers=link)

    # -- manifests ---------------------------------------------------------------------------------------
    def _find_manifest(self, name: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of ``name``'s manifest ``reference`` (a tag or a digest)."""
        if ':' in reference:
            parse_digest(reference)
            digest = reference
            media_type = None
        else:
            entry = self.layout.resolve(name, reference)
            if entry is None:
                raise manifest_unknown(name, reference)
            digest = entry['digest']
            media_type = entry.get('mediaType')
        found = self.layout.read_manifest(digest)
        if found is None:
            raise manifest_unknown(name, reference)
        raw, declared = found
        return raw, media_type if media_type in MANIFEST_MEDIA_TYPES else declared, digest

    async def _manifest_get(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        raw, media_type, digest = self._find_manifest(name, reference)
        headers = {'Docker-Content-Digest': digest, hdrs.ETAG: '"%s"' % digest}
        if request.headers.get(hdrs.IF_NONE_MATCH, '').strip() == '"%s"' % digest:
            return web.Response(status=304, headers=headers)
        return web.Response(body=raw, content_type=media_type, headers=headers)  # HEAD: aiohttp sends the headers only

    async def _manifest_put(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        raw = await _read_limited(request, MAX_MANIFEST, 'manifest')
        content_type = (request.headers.get(hdrs.CONTENT_TYPE) or '').split(';')[0].strip()
        declared = manifest_media_type(raw)
        if declared is None:
            raise RegistryError(400, 'MANIFEST_INVALID', 'manifest %s:%s is not an image manifest or index (JSON with schemaVersion 2)'
                                % (name, reference))
        try:
            doc_type = json.loads(raw).get('mediaType')
        except ValueError:
            doc_type = None
        if content_type and content_type in MANIFEST_MEDIA_TYPES:
            if doc_type and doc_type != content_type:
                raise RegistryError(400, 'MANIFEST_INVALID', 'Content-Type %s differs from the manifest\'s mediaType %s' % (content_type, doc_type))
            media_type = content_type
        elif content_type and content_type not in ('application/json', 'application/octet-stream'):
            raise RegistryError(400, 'MANIFEST_INVALID', 'Content-Type %s is not a manifest media type (%s)'
                                % (content_type, ', '.join(MANIFEST_MEDIA_TYPES)))
        else:
            media_type = declared
        if ':' in reference:
            algorithm, _hex = parse_digest(reference)
            digest = digest_of(raw, algorithm)
            if digest != reference:
                raise digest_invalid('manifest pushed as %s hashes to %s; nothing was stored' % (reference, digest))
        else:
            digest = digest_of(raw)
        doc = json.loads(raw)
        self._check_references(doc, media_type)
        subject = doc.get('subject')
        artifact_type = doc.get('artifactType')

        def store() -> None:
            # fsyncs of the manifest, index.json and their directories: in a worker thread, not on the event loop
            self.layout.store_bytes(raw, digest)
            if ':' not in reference:
                self.layout.set_tag(name, reference, media_type, digest, len(raw), artifact_type if isinstance(artifact_type, str) else None)
            elif isinstance(subject, dict):
                self.layout.add_untagged(media_type, digest, len(raw))
        await asyncio.get_running_loop().run_in_executor(None, store)
        headers = {hdrs.LOCATION: '/v2/%s/manifests/%s' % (name, digest), 'Docker-Content-Digest': digest}
        if isinstance(subject, dict) and isinstance(subject.get('digest'), str):
            headers['OCI-Subject'] = subject['digest']
        return web.Response(status=201, headers=headers)

    def _check_references(self, doc: dict[str, t.Any], media_type: str) -> None:
        """Everything a manifest refers to must be stored before it (distribution answers MANIFEST_BLOB_UNKNOWN too)."""
        if media_type in INDEX_MEDIA_TYPES:
            children = doc.get('manifests')
            if not isinstance(children, list):
                raise RegistryError(400, 'MANIFEST_INVALID', 'index without a "manifests" list')
            wanted = children
        else:
            config = doc.get('config')
            layers = doc.get('layers', [])
            if not isinstance(config, dict) or not isinstance(layers, list):
                raise RegistryError(400, 'MANIFEST_INVALID', 'manifest without a "config" descriptor and a "layers" list')
            wanted = [config] + [layer for layer in layers if not (isinstance(layer, dict) and layer.get('urls'))]
        for descriptor in wanted:
            if not isinstance(descriptor, dict) or not isinstance(descriptor.get('digest'), str):
                raise RegistryError(400, 'MANIFEST_INVALID', 'a descriptor without a digest')
            st = self.layout.blob_stat(descriptor['digest'])
            if st is None:
                raise RegistryError(400, 'MANIFEST_BLOB_UNKNOWN', 'the manifest refers to %s, which is not stored; push it first'
                                    % descriptor['digest'], detail={'digest': descriptor['digest']})
            if isinstance(descriptor.get('size'), int) and descriptor['size'] != st.st_size:
                raise RegistryError(400, 'SIZE_INVALID', 'descriptor of %s says %d bytes, the stored blob has %d'
                                    % (descriptor['digest'], descriptor['size'], st.st_size))

    async def _manifest_delete(self, request: web.Request, name: str, reference: str) -> web.StreamResponse:
        if not self.allow_delete:
            raise unsupported('deletion is disabled on this registry (receiver option --oci-allow-delete)')
        if ':' in reference:
            parse_digest(reference)
            removed = await asyncio.get_running_loop().run_in_executor(None, self.layout.delete_digest, name, reference)
        else:
            removed = await asyncio.get_running_loop().run_in_executor(None, self.layout.delete_tag, name, reference)
        if not removed:
            raise manifest_unknown(name, reference)
        return web.Response(status=202)

    async def _referrers_get(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        parse_digest(digest)
        artifact_type = request.query.get('artifactType')
        index = {'schemaVersion': 2, 'mediaType': INDEX_MEDIA_TYPES[0], 'manifests': self.layout.referrers(digest, artifact_type)}
        headers = {'OCI-Filters-Applied': 'artifactType'} if artifact_type else {}
        return web.Response(body=json.dumps(index).encode('utf-8'), content_type=INDEX_MEDIA_TYPES[0], headers=headers)

    # -- blobs -------------------------------------------------------------------------------------------
    async def _blob_get(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        # The media path's own opener: a regular file beneath blobs/, opened once (no symlink out of the layout).
        opened = open_regular_file(str(self.layout.blob_path(digest)), self.layout.blobs_root())
        if opened is None:
            raise blob_unknown(digest)
        response = MediaResponse(*opened)
        response.headers['Docker-Content-Digest'] = digest
        return response

    async def _blob_delete(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        raise unsupported('blobs are not deleted: one content store serves every repository (delete manifests or tags instead)')

    # -- uploads -----------------------------------------------------------------------------------------
    async def _upload_start_post(self, request: web.Request, name: str) -> web.StreamResponse:
        query = request.query
        mount = query.get('mount')
        if mount:
            parse_digest(mount)
            if self.layout.blob_stat(mount) is not None:
                return _blob_created(name, mount)
            # Not here: the spec says to fall back to an ordinary upload session.
        digest = query.get('digest')
        session = self.uploads.start(name)
        if digest:
            parse_digest(digest)
            async with session.lock:
                try:
                    await self.uploads.append(session, request.content.iter_any(), body_timeout=_body_timeout(request))
                except BaseException:
                    self.uploads.cancel(session)  # a monolithic upload has no session the client knows of
                    raise
                await self.uploads.finish(session, digest)
            return _blob_created(name, digest)
        return _upload_accepted(name, session.id, 0, status=202)

    async def _upload_get(self, request: web.Request, name: str, upload: str) -> web.StreamResponse:
        session = self.uploads.get(name, upload)
        return _upload_accepted(name, upload, session.offset, status=204)

    async def _upload_patch(self, request: web.Request, name: str, upload: str) -> web.StreamResponse:
        session = self.uploads.get(name, upload)
        if session.lock.locked():
            raise RegistryError(416, 'BLOB_UPLOAD_INVALID', 'upload %s: another request is writing to it' % upload,
                                headers=_range(session.offset))
        async with session.lock:
            content_range = request.headers.get(hdrs.CONTENT_RANGE)
            if content_range is not None:
                first, last = parse_content_range(content_range)
                if first != session.offset:
                    raise RegistryError(416, 'BLOB_UPLOAD_INVALID', 'upload %s: chunk starts at byte %d, but %d bytes were received; '
                                        'send the chunk that starts at %d' % (upload, first, session.offset, session.offset),
                                        headers=dict(_range(session.offset), **{hdrs.LOCATION: _upload_url(name, upload)}))
                length = request.content_length
                if length is not None and length != last - first + 1:
                    raise RegistryError(400, 'BLOB_UPLOAD_INVALID', 'upload %s: Content-Range %s is %d bytes, Content-Length says %d'
                                        % (upload, content_range, last - first + 1, length))
            start = session.offset
            try:
                await self.uploads.append(session, request.content.iter_any(), body_timeout=_body_timeout(request))
            except BaseException:
                if session.broken:
                    self.uploads.cancel(session)
                raise  # otherwise the session keeps what arrived: resumable from its Range
            if content_range is not None and session.offset != last + 1:
                raise RegistryError(400, 'BLOB_UPLOAD_INVALID', 'upload %s: the chunk had %d bytes, its Content-Range %d; resume from byte %d'
                                    % (upload, session.offset - start, last - first + 1, session.offset), headers=_range(session.offset))
            return _upload_accepted(name, upload, session.offset, status=202)

    async def _upload_put(self, request: web.Request, name: str, upload: str) -> web.StreamResponse:
        session = self.uploads.get(name, upload)
        digest = request.query.get('digest')
        if not digest:
            raise digest_invalid('closing PUT of upload %s needs ?digest=<algorithm>:<hex>' % upload)
        parse_digest(digest)
        async with session.lock:
            content_range = request.headers.get(hdrs.CONTENT_RANGE)
            if content_range is not None and request.content_length:
                first, _last = parse_content_range(content_range)
                if first != session.offset:
                    raise RegistryError(416, 'BLOB_UPLOAD_INVALID', 'upload %s: last chunk starts at byte %d, expected %d'
                                        % (upload, first, session.offset), headers=_range(session.offset))
            try:
                await self.uploads.append(session, request.content.iter_any(), body_timeout=_body_timeout(request))
            except BaseException:
                if session.broken:
                    self.uploads.cancel(session)
                raise  # resumable, as for PATCH
            await self.uploads.finish(session, digest)
        return _blob_created(name, digest)

    async def _upload_delete(self, request: web.Request, name: str, upload: str) -> web.StreamResponse:
        self.uploads.cancel(self.uploads.get(name, upload))
        return web.Response(status=204)


def _body_timeout(request: web.Request) -> float:
    """The receiver's --body-timeout (api.BODY_TIMEOUT_KEY): the longest pause while an upload's body arrives."""
    return float(request.app.get(BODY_TIMEOUT_KEY, 0.0))


def _route(tail: str) -> tuple[str, re.Match[str]] | None:
    for kind, pattern in _ROUTES:
        match = pattern.fullmatch(tail)
        if match:
            return kind, match
    return None


def _upload_url(name: str, upload: str) -> str:
    return '/v2/%s/blobs/uploads/%s' % (name, upload)


def _range(offset: int) -> dict[str, str]:
    # The spec's Range of an upload: the bytes received, inclusive; "0-0" before the first (as distribution says).
    return {hdrs.RANGE: '0-%d' % max(offset - 1, 0)}


def _upload_accepted(name: str, upload: str, offset: int, status: int) -> web.Response:
    headers = {hdrs.LOCATION: _upload_url(name, upload), 'Docker-Upload-UUID': upload}
    headers.update(_range(offset))
    return web.Response(status=status, headers=headers)


def _blob_created(name: str, digest: str) -> web.Response:
    return web.Response(status=201, headers={hdrs.LOCATION: '/v2/%s/blobs/%s' % (name, digest), 'Docker-Content-Digest': digest})


def _page(items: list[str], request: web.Request, path: str) -> tuple[list[str], dict[str, str]]:
    """The spec's pagination: items after ``last``, at most ``n``; a ``Link: <...>; rel="next"`` when more follow."""
    last = request.query.get('last')
    if last:
        items = [item for item in items if item > last]
    raw_n = request.query.get('n')
    if raw_n is None or raw_n == '':
        return items, {}
    if not raw_n.isdigit():
        raise RegistryError(400, 'PAGINATION_NUMBER_INVALID', 'n=%r: expected a number of entries' % raw_n)
    n = min(int(raw_n), MAX_PAGE)
    page = items[:n]
    if len(items) > n and page:
        query = urllib.parse.urlencode({'n': str(n), 'last': page[-1]})
        return page, {'Link': '<%s?%s>; rel="next"' % (path, query)}
    return page, {}


async def _read_limited(request: web.Request, limit: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise RegistryError(413, 'SIZE_INVALID', '%s is larger than %d bytes' % (what, limit))
    return bytes(data)
