# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors of the embedded registry, answered in the Distribution spec's JSON error format.

``{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": ...}]}`` with the codes of the
OCI Distribution Specification 1.1 (section "Error Codes"); the HTTP status goes with the code as the
spec's table lists it.
"""

from __future__ import annotations

import json
import typing as t

from aiohttp import web

API_VERSION_HEADER = 'Docker-Distribution-API-Version'
API_VERSION = 'registry/2.0'


class RegistryError(Exception):
    """One error of the Distribution API: ``code`` from the spec, its HTTP ``status``, a message naming what is wrong."""

    def __init__(self, status: int, code: str, message: str, detail: t.Any = None, headers: t.Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        entry: dict[str, t.Any] = {'code': self.code, 'message': self.message}
        if self.detail is not None:
            entry['detail'] = self.detail
        headers = {API_VERSION_HEADER: API_VERSION}
        headers.update(self.headers)
        response = web.Response(status=self.status, body=json.dumps({'errors': [entry]}).encode('utf-8'), content_type='application/json',
                                headers=headers)
        if self.status == 408:
            response.force_close()  # the rest of a stalled body must not be read as the next request
        return response


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError(404, 'BLOB_UNKNOWN', 'blob unknown to registry: %s' % digest)


def manifest_unknown(name: str, reference: str) -> RegistryError:
    return RegistryError(404, 'MANIFEST_UNKNOWN', 'manifest unknown: %s:%s' % (name, reference) if ':' not in reference
                         else 'manifest unknown: %s@%s' % (name, reference))


def name_unknown(name: str) -> RegistryError:
    return RegistryError(404, 'NAME_UNKNOWN', 'repository name not known to registry: %s' % name)


def upload_unknown(upload_id: str) -> RegistryError:
    return RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry: %s' % upload_id)


def digest_invalid(message: str) -> RegistryError:
    return RegistryError(400, 'DIGEST_INVALID', message)


def unsupported(message: str) -> RegistryError:
    return RegistryError(405, 'UNSUPPORTED', message)
