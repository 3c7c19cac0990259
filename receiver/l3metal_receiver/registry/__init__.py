# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded OCI registry (design addendum 4.2): ``/v2/`` on the receiver's port, stored as an OCI image layout.

Turned on by ``--oci-layout DIR``; without it ``/v2/`` stays 404.  ``install(app, config)`` adds the route
and the start/stop of the storage to the receiver's aiohttp application; nothing else in the receiver knows
about the registry.  Modules: ``layout`` (storage), ``uploads`` (blob upload sessions), ``auth`` (htpasswd,
API token), ``handlers`` (the Distribution API), ``errors``; ``python -m l3metal_receiver.registry verify DIR``
checks a layout offline.  See docs/registry.md.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from pathlib import Path

from aiohttp import web

from .auth import Authenticator, Htpasswd
from .handlers import Registry
from .layout import Layout

__all__ = ['RegistryConfig', 'install']

LOG = logging.getLogger('l3metal_receiver.registry')
REGISTRY_KEY: web.AppKey[Registry] = web.AppKey('registry', Registry)


@dataclasses.dataclass(frozen=True)
class RegistryConfig:
    layout_dir: Path
    htpasswd: Path | None = None
    api_token: str | None = None
    pull_auth: bool = False
    allow_delete: bool = False
    default_repository: str | None = None


def build(config: RegistryConfig) -> Registry:
    """The registry for ``config`` (checks the htpasswd file now: a bad file stops the start with its line named)."""
    htpasswd = Htpasswd(config.htpasswd) if config.htpasswd else None
    authenticator = Authenticator(htpasswd, config.api_token, config.pull_auth)
    return Registry(Layout(config.layout_dir, config.default_repository), authenticator, config.allow_delete)


def install(app: web.Application, config: RegistryConfig) -> None:
    """Serve ``/v2/`` from ``config.layout_dir`` in ``app``; the layout is opened (and crash leftovers removed) when the app starts."""
    registry = build(config)
    app[REGISTRY_KEY] = registry
    app.router.add_route('*', '/v2', _redirect_v2)
    app.router.add_route('*', '/v2/{tail:.*}', registry.handle)
    app.cleanup_ctx.append(_registry_context)


async def _redirect_v2(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently('/v2/')


async def _registry_context(app: web.Application) -> t.AsyncIterator[None]:
    registry = app[REGISTRY_KEY]
    try:
        removed = registry.layout.open()
    except (OSError, ValueError) as exc:
        from ..server import StartupError  # pylint: disable=import-outside-toplevel  # main() prints it as one line, exit 1
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(registry.layout.root, 'the --oci-layout directory: %s' % cause) from None
    LOG.info('OCI registry on /v2/ from %s (%d tag(s); %d interrupted upload(s) removed; push %s; pull %s; delete %s)',
             registry.layout.root, sum(len(registry.layout.tags(r)) for r in registry.layout.repositories()), removed,
             'needs credentials' if registry.auth.has_credentials else 'disabled (no credentials configured)',
             'needs credentials' if registry.auth.pull_auth else 'open', 'allowed' if registry.allow_delete else 'disabled')
    try:
        yield
    finally:
        registry.uploads.close_all()
