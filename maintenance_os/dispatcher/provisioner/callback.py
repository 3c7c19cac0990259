# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Callback settings (receiver URL, job id, per-job token, serial, receiver CA) and sending signed webhooks.

The signing and retry logic is the shared ``webhook.WebhookSender``; this module only finds the
settings: in the recipe while the dispatcher runs, in ``<run dir>/callback.json`` for ``notify``.
"""

from __future__ import annotations

import json
import os
import re
import typing as t

from l3metal_contract import webhook

from .errors import ConfigError

DMI_SERIAL_FILES = ('/sys/class/dmi/id/product_serial', '/sys/class/dmi/id/chassis_serial', '/sys/class/dmi/id/board_serial')
# CA bundle of an https receiver, from the site settings (/etc/l3metal/site.env); the system's CAs otherwise.
CA_FILE_VARIABLE = 'L3METAL_RECEIVER_CA_FILE'
_SERIAL_PATTERN = re.compile(r'^[A-Za-z0-9._:-]{1,128}$')
# What firmware puts in DMI fields it does not fill.
_PLACEHOLDER_SERIALS = {'', 'none', 'default string', 'to be filled by o.e.m.', 'not specified', '0', '0123456789', 'system serial number'}


class Callback(t.NamedTuple):
    url: str
    job_id: str
    token: str
    serial: str
    ca_file: str | None = None


def receiver_ca_file(environ: t.Mapping[str, str] | None = None) -> str | None:
    return (os.environ if environ is None else environ).get(CA_FILE_VARIABLE) or None


def _block(recipe: t.Any) -> dict[str, t.Any]:
    block = recipe.get('callback') if isinstance(recipe, dict) else None
    return block if isinstance(block, dict) else {}


def recipe_serial(recipe: t.Any) -> str | None:
    """``callback.serial`` of a recipe that may be invalid elsewhere, if it is a usable serial."""
    serial = _block(recipe).get('serial')
    return serial if isinstance(serial, str) and _SERIAL_PATTERN.match(serial) else None


def recipe_job_id(recipe: t.Any) -> str | None:
    job_id = _block(recipe).get('job_id')
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= 64 else None


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
    block = _block(recipe)
    url, job_id, token = block.get('url'), block.get('job_id'), block.get('token')
    if not (isinstance(url, str) and re.match(r'^https?://[^\s/?#]+', url) and isinstance(token, str) and token and isinstance(job_id, str)):
        return None
    serial = recipe_serial(recipe) or dmi_serial(serial_files)
    if not serial:
        return None
    return Callback(url, job_id, token, serial, receiver_ca_file())


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
        return Callback(str(data['url']), str(data['job_id']), str(data['token']), str(data['serial']), data.get('ca_file') or None)
    except (KeyError, TypeError, AttributeError):
        raise ConfigError('%s lacks url, job_id, token or serial' % path) from None


def sender(callback: Callback, attempts: int = 8, timeout: float = 10.0, max_backoff: float = 30.0) -> webhook.WebhookSender:
    return webhook.WebhookSender(callback.url, callback.serial, callback.token, job_id=callback.job_id or None,
                                 timeout=timeout, attempts=attempts, max_backoff=max_backoff, ca_file=callback.ca_file)
