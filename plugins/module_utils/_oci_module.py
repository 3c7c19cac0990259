# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the OCI modules share: the registry options (see the ``l3metal.provision.oci`` doc fragment) and
how typed errors become ``fail_json`` arguments."""

from __future__ import annotations

import typing as t

from ._oci.errors import (
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


def registry_argument_spec() -> dict[str, dict[str, t.Any]]:
    """Argument spec of the options in the ``l3metal.provision.oci`` doc fragment."""
    return dict(
        reference=dict(type='str', required=True),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        docker_config=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        insecure=dict(type='bool', default=False),
        timeout=dict(type='float', default=60.0),
    )


def client_options(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Keyword arguments for ``RegistryClient`` and the pull/push functions from module parameters."""
    return {key: params[key] for key in ('username', 'password', 'docker_config', 'insecure', 'ca_path', 'validate_certs', 'timeout')}


_KINDS: tuple[tuple[type[OciError], str], ...] = (
    (InvalidReferenceError, 'invalid_reference'),
    (AuthenticationError, 'authentication'),
    (NotFoundError, 'not_found'),
    (DigestMismatchError, 'digest_mismatch'),
    (UnsafeArchiveError, 'unsafe_archive'),
    (UnsupportedError, 'unsupported'),
    (CorruptStreamError, 'corrupt_stream'),
    (RegistryError, 'registry'),
)


def error_result(exc: OciError) -> dict[str, t.Any]:
    """``fail_json`` keyword arguments: the message, an ``error`` kind to branch on, and the registry's details."""
    kind = next((name for cls, name in _KINDS if isinstance(exc, cls)), 'error')
    result: dict[str, t.Any] = {'msg': str(exc), 'error': kind}
    if isinstance(exc, RegistryError):
        if exc.status is not None:
            result['status'] = exc.status
        if exc.errors:
            result['registry_errors'] = exc.errors
    return result
