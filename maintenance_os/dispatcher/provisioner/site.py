# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Site settings of the maintenance image, and the fallback channel for failures before a job token is known.

The settings are environment variables, set by ``provision-dispatcher.service`` from
``/etc/l3metal/site.env`` (baked into the image by ``maintenance_os/site/Containerfile``):

``L3METAL_RECEIVER_URL``
    The receiver's base URL; the kernel command line's ``l3metal.receiver=<url>`` overrides it.
``L3METAL_NODE_KEY_FILE``
    The site node key (default ``/etc/l3metal/node-key``, mode 0600).
``L3METAL_RECEIVER_CA_FILE``
    CA bundle of an https receiver (used for the per-job callback too).

With no usable per-job callback (no task medium, a recipe.json that does not parse, a recipe without
a callback block), the dispatcher reports its failure to that receiver, signed with a key derived
from the site node key and the server's serial (``webhook.site_signing_key``).  The receiver takes
nothing from such a report but ``failed`` at ``provision-dispatcher.service`` for the serial's
active job.  Trust model: docs/webhooks.md, "Site key".
"""

from __future__ import annotations

import os
import re
import shlex
import typing as t

from l3metal_contract import webhook

from . import callback as cb
from .errors import ConfigError

RECEIVER_VARIABLE = 'L3METAL_RECEIVER_URL'
NODE_KEY_VARIABLE = 'L3METAL_NODE_KEY_FILE'
DEFAULT_NODE_KEY_FILE = '/etc/l3metal/node-key'
SITE_ENV_FILE = '/etc/l3metal/site.env'
CMDLINE_FILE = '/proc/cmdline'
CMDLINE_RECEIVER = 'l3metal.receiver'
_URL = re.compile(r'^https?://[^\s/?#]+[^\s?#]*$')


class SiteChannel(t.NamedTuple):
    url: str
    serial: str
    key: str
    ca_file: str | None


def cmdline_value(name: str, path: str = CMDLINE_FILE) -> str | None:
    """``name=value`` from the kernel command line (the last one wins, as for the kernel's own parameters)."""
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            text = handle.read()
    except OSError:
        return None
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: the kernel itself splits on blanks then
        words = text.split()
    values = [word.split('=', 1)[1] for word in words if word.startswith(name + '=')]
    return values[-1] if values else None


def receiver_url(environ: t.Mapping[str, str], cmdline_path: str = CMDLINE_FILE) -> str:
    url = cmdline_value(CMDLINE_RECEIVER, cmdline_path) or environ.get(RECEIVER_VARIABLE) or ''
    if not url:
        raise ConfigError('no receiver is configured for it (%s in %s, or %s=<url> on the kernel command line)'
                          % (RECEIVER_VARIABLE, SITE_ENV_FILE, CMDLINE_RECEIVER))
    if not _URL.match(url):
        raise ConfigError('the site receiver URL %r is not an http(s) URL' % url)
    return url


def node_key(environ: t.Mapping[str, str]) -> str:
    path = environ.get(NODE_KEY_VARIABLE) or DEFAULT_NODE_KEY_FILE
    try:
        with open(path, encoding='utf-8') as handle:
            return webhook.parse_site_keys(handle.read(), path)[0]
    except FileNotFoundError:
        raise ConfigError('the maintenance image has no site node key (%s)' % path) from None
    except (OSError, ValueError) as exc:
        raise ConfigError('cannot use the site node key: %s' % exc) from None


def channel(serial_files: t.Sequence[str], recipe: t.Any = None, environ: t.Mapping[str, str] | None = None,
            cmdline_path: str = CMDLINE_FILE) -> SiteChannel:
    """Where and how to report without a per-job token; ``ConfigError`` says why that is not possible.

    The serial comes from DMI first (the node reports about itself), then from the recipe's
    ``callback.serial`` when a recipe was read.
    """
    environ = os.environ if environ is None else environ
    url = receiver_url(environ, cmdline_path)
    serial = cb.dmi_serial(serial_files) or cb.recipe_serial(recipe)
    if not serial:
        raise ConfigError('the server serial number is unknown (DMI: %s)' % ', '.join(serial_files))
    return SiteChannel(url, serial, node_key(environ), cb.receiver_ca_file(environ))


def sender(site: SiteChannel, attempts: int = 8, timeout: float = 10.0) -> webhook.WebhookSender:
    return webhook.WebhookSender(site.url, site.serial, webhook.site_signing_key(site.key, site.serial), timeout=timeout, attempts=attempts,
                                 max_backoff=30.0, ca_file=site.ca_file, key_id=webhook.SITE_KEY_ID)
