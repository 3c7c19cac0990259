# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the OCI client: references, the registry client, pulls and their unpacker, pushes.

Standard library only, no Ansible imports (the package's rule: ``__init__.py``).  Every message names
the registry URL, the reference or the
archive member at fault and, where there is one, the fix.
"""

from __future__ import annotations

import typing as t


class OciError(Exception):
    """Base class: anything that went wrong talking to a registry or unpacking an artifact."""


class InvalidReferenceError(OciError, ValueError):
    """The reference string is not ``registry/repository[:tag][@digest]``."""


class RegistryError(OciError):
    """The registry answered with an error status; ``status``, ``url`` and the registry's error list are kept."""

    def __init__(self, message: str, status: int | None = None, url: str | None = None,
                 errors: t.Sequence[t.Mapping[str, t.Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.errors = list(errors)


class AuthenticationError(RegistryError):
    """Credentials missing or refused (401/403), or the token service failed."""


class NotFoundError(RegistryError):
    """The repository, tag, manifest or blob does not exist (404 / MANIFEST_UNKNOWN / NAME_UNKNOWN)."""


class DigestMismatchError(OciError):
    """Content did not hash to the digest (or size) its descriptor announced."""


class UnsafeArchiveError(OciError):
    """A tar member would land outside the target (``../``, absolute path, link out of the tree)."""


class CorruptStreamError(OciError):
    """A layer does not decompress or parse as tar.  Usually the blob is damaged: callers that can read
    the rest of the blob check its digest and report ``DigestMismatchError`` instead."""


class UnsupportedError(OciError):
    """The artifact uses something this client does not handle (an index, an unknown compression, ...)."""
