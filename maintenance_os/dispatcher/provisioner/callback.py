# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Callback settings (receiver URL, job id, per-job token, serial) and sending signed webhooks.

The signing and retry logic is the shared ``_webhook.WebhookSender``; this module only finds the
settings: in the recipe while the dispatcher runs, in ``<run dir>/callback.json`` for ``notify``.
"""

from __future__ import annotations

import json
import os
import re
import typing as t

from .errors import ConfigError
from .shared import _webhook

DMI_SERIAL_FILES = ('/sys/class/dmi/id/product_serial', '/sys/class/dmi/id/chassis_serial', '/sys/class/dmi/id/board_serial')
_SERIAL_PATTERN = re.compile(r'^[A-Za-z0-9._:-]{1,128}$')
# What firmware puts in DMI fields it does not fill.
_PLACEHOLDER_SERIALS = {'', 'none', 'default string', 'to be filled by o.e.m.', 'not specified', '0', '0123456789', 'system serial number'}


class Callback(t.NamedTuple):
    url: str
    job_id: str
    token: str
    serial: str


def dmi_serial(paths: t.Sequence[str] = DMI_SERIAL_FILES) -> str | None:
    """The server's serial number from DMI (readable by root only), ignoring firmware placeholders."""
    for path in paths:
        try:
            with open(path, encoding='utf-8', errors='replace') as handle:
                value = handle.read().strip()
        except OSError:
            continue
        if value.lower() not in _PLACEHOLDER_SERIALS and _SERIAL_PATTERN.match(value):
            return value
    return None


def from_recipe(recipe: t.Any, serial_files: t.Sequence[str] = DMI_SERIAL_FILES) -> Callback | None:
    """Callback settings from a recipe that may be invalid elsewhere: enough to report why it is invalid.

    Only the callback object itself must be usable (http(s) URL, job id and token strings); the serial
    comes from the recipe or from DMI.
    """
    if not isinstance(recipe, dict) or not isinstance(recipe.get('callback'), dict):
        return None
    block = recipe['callback']
    url, job_id, token, serial = block.get('url'), block.get('job_id'), block.get('token'), block.get('serial')
    if not (isinstance(url, str) and re.match(r'^https?://[^\s/?#]+', url) and isinstance(token, str) and token and isinstance(job_id, str)):
        return None
    if not (isinstance(serial, str) and _SERIAL_PATTERN.match(serial)):
        serial = dmi_serial(serial_files)
    if not serial:
        return None
    return Callback(url, job_id, token, serial)


def load(run_dir: str) -> Callback:
    """Settings written by ``provisioner run`` to ``<run_dir>/callback.json``."""
    path = os.path.join(run_dir, 'callback.json')
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ConfigError('%s does not exist: the recipe had no callback, or provisioner run has not run' % path) from None
    except (OSError, ValueError) as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc)) from None
    try:
        return Callback(str(data['url']), str(data['job_id']), str(data['token']), str(data['serial']))
    except (KeyError, TypeError):
        raise ConfigError('%s lacks url, job_id, token or serial' % path) from None


def sender(callback: Callback, attempts: int = 8, timeout: float = 10.0, max_backoff: float = 30.0) -> _webhook.WebhookSender:
    return _webhook.WebhookSender(callback.url, callback.serial, callback.token, job_id=callback.job_id or None,
                                  timeout=timeout, attempts=attempts, max_backoff=max_backoff)
