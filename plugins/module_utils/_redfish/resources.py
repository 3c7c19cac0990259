# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The few sushy resource subclasses this package needs.

- Headers (``ETag``, ``Allow``) come from the GET that produced the resource's current state.  sushy
  re-GETs the resource for each ``_get_etag()``/``_allow_patch()`` call, which costs a request per
  action and can pair an ETag with a different state than the one the decision was made on.
- The ETag falls back to ``@odata.etag`` of the body (Lenovo XCC sends it there).
- A virtual media slot can be told to mount by PATCH although its ``Allow`` header does not say so
  (quirks table: Lenovo EXT slots).
- A ComputerSystem can be built from a body already fetched, and reading it does not GET its
  ``@Redfish.Settings`` object (only the boot code needs that, and reads it itself).
"""

from __future__ import annotations

import typing as t

try:
    from sushy.resources import base as sushy_base
    from sushy.resources import constants as sushy_constants
    from sushy.resources.manager import virtual_media as sushy_vmedia
    from sushy.resources.system import system as sushy_system
    HAS_SUSHY = True
except ImportError:  # pragma: no cover - exercised by the sanity import test
    HAS_SUSHY = False

if HAS_SUSHY:
    class _HeadersFromLastGet:
        """Mixin: answer ``_get_headers`` from the connector's record of the last GET of this resource."""

        _conn: t.Any
        _path: str

        def _get_headers(self) -> t.Mapping[str, str]:
            cached = self._conn.cached_headers(self._path) if hasattr(self._conn, 'cached_headers') else None
            if cached is not None:
                return cached
            return super()._get_headers()  # type: ignore[misc]  # the mixin sits before a sushy resource

        def _get_etag(self) -> str | None:
            etag = self._get_headers().get('ETag')
            if etag:
                return str(etag)
            body = getattr(self, 'json', None) or {}
            return body.get('@odata.etag') or None

    class VirtualMediaResource(_HeadersFromLastGet, sushy_vmedia.VirtualMedia):
        """A virtual media slot; ``patch_mount`` forces mounting by PATCH (set from the quirks table)."""

        patch_mount = False

        def _allow_patch(self) -> bool:
            return self.patch_mount or bool(super()._allow_patch())

        @property
        def has_insert_action(self) -> bool:
            actions = self._actions
            return bool(actions and actions.insert_media)

        def can_patch(self) -> bool:
            return self._allow_patch()

    class VirtualMediaCollection(sushy_vmedia.VirtualMediaCollection):
        @property
        def _resource_type(self) -> type:
            return VirtualMediaResource

    class _BootWithoutSettingsFetch(sushy_system.BootField):
        def _load(self, body: t.Any, resource: t.Any, nested_in: t.Any = None) -> t.Any:
            return sushy_base.CompositeField._load(self, body, resource, nested_in)

    class SystemResource(_HeadersFromLastGet, sushy_system.System):
        boot = _BootWithoutSettingsFetch('Boot')

        def __init__(self, connector: t.Any, path: str, redfish_version: str | None = None, registries: t.Any = None,
                     root: t.Any = None, json_doc: dict[str, t.Any] | None = None) -> None:
            # System.__init__ takes no json_doc; go to ResourceBase directly when the body is known.
            sushy_base.ResourceBase.__init__(self, connector, path, redfish_version=redfish_version, registries=registries,
                                             json_doc=json_doc, root=root)


def reset_type(value: str) -> t.Any:
    """sushy's ResetType member for a Redfish ResetType string (sushy compares enum members, not strings)."""
    return sushy_constants.ResetType(value)
