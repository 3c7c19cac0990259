# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the dispatcher writes to the run directory (``/run/provision``) for the units and tool containers.

=================  =====  =============================================================================
file               mode   content
=================  =====  =============================================================================
recipe.env         0644   TASK_TARGET, TARGET_DISK, OCI_URL, FIRMWARE_URL, FIRMWARE_SHA256, WIM_INDEX,
                          JOB_ID, SERIAL_NUMBER (systemd EnvironmentFile= syntax, no secrets)
recipe.json        0600   the validated, normalized recipe (holds the callback token)
layout.json        0644   the partition_layout array
user-data          0600   cloud-init user-data (may hold password hashes and keys)
meta-data          0644   NoCloud meta-data; instance-id is the job id
unattend.xml       0600   Windows answer file (may hold the administrator password)
ks.cfg             0600   ESXi kickstart
callback.json      0600   webhook url, job id, token and serial for ``provisioner notify``
=================  =====  =============================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import typing as t

from l3metal_contract import medium

from . import envfile

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644

ENV_FILE = 'recipe.env'
RECIPE_FILE = medium.RECIPE_FILE  # the run directory keeps the medium's names
LAYOUT_FILE = 'layout.json'
META_DATA_FILE = medium.META_DATA_FILE
CALLBACK_FILE = 'callback.json'
PAYLOAD_MODES = {'user-data': SECRET_MODE, 'unattend.xml': SECRET_MODE, 'ks.cfg': SECRET_MODE}

# recipe field -> variable in recipe.env
ENV_FIELDS = (
    ('task_target', 'TASK_TARGET'),
    ('target_disk', 'TARGET_DISK'),
    ('oci_url', 'OCI_URL'),
    ('firmware_url', 'FIRMWARE_URL'),
    ('firmware_sha256', 'FIRMWARE_SHA256'),
    ('wim_index', 'WIM_INDEX'),
)


def write_file(path: str, data: bytes, mode: int) -> None:
    """Write atomically (temporary file + rename) with ``mode`` set before any byte is written."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def env_variables(recipe: t.Mapping[str, t.Any], job_id: str | None, serial: str | None) -> dict[str, str]:
    variables: dict[str, str] = {}
    for field, name in ENV_FIELDS:
        value = recipe.get(field)
        if value is not None:
            variables[name] = str(value).lower() if field == 'firmware_sha256' else str(value)
    if 'WIM_INDEX' not in variables and recipe.get('task_target') == 'install-windows.target':
        variables['WIM_INDEX'] = '1'
    if job_id:
        variables['JOB_ID'] = job_id
    if serial:
        variables['SERIAL_NUMBER'] = serial
    return variables


def instance_id(recipe: t.Mapping[str, t.Any], job_id: str | None) -> str:
    """The job id; without a callback, a stable id derived from the recipe (a new recipe is a new instance)."""
    if job_id:
        return job_id
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode('utf-8')).hexdigest()
    return 'iid-' + digest[:16]


def meta_data(recipe: t.Mapping[str, t.Any], job_id: str | None) -> bytes:
    # JSON string quoting is valid YAML and keeps ids such as "1.10" strings.
    return ('instance-id: %s\n' % json.dumps(instance_id(recipe, job_id))).encode('utf-8')


def write_run_dir(run_dir: str, recipe: t.Mapping[str, t.Any], payloads: t.Mapping[str, bytes], callback: t.Mapping[str, str] | None,
                  serial: str | None, medium_meta_data: bytes | None = None) -> list[str]:
    """Write every file for ``recipe`` into ``run_dir``; return the names written.

    ``payloads`` maps file names (``user-data``, ``unattend.xml``, ``ks.cfg``) to content.  Files of an
    earlier run that this recipe does not produce are removed, so a tool never reads stale input.
    """
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    job_id = callback.get('job_id') if callback else None
    written: dict[str, tuple[bytes, int]] = {}
    header = 'Written by provisioner run from the task medium; systemd EnvironmentFile= syntax.'
    written[ENV_FILE] = (envfile.render(env_variables(recipe, job_id, serial), header).encode('utf-8'), PUBLIC_MODE)
    written[RECIPE_FILE] = ((json.dumps(recipe, indent=2, sort_keys=False) + '\n').encode('utf-8'), SECRET_MODE)
    if recipe.get('partition_layout') is not None:
        written[LAYOUT_FILE] = ((json.dumps(recipe['partition_layout'], indent=2) + '\n').encode('utf-8'), PUBLIC_MODE)
    for name, data in payloads.items():
        written[name] = (data, PAYLOAD_MODES.get(name, SECRET_MODE))
    written[META_DATA_FILE] = (medium_meta_data if medium_meta_data is not None else meta_data(recipe, job_id), PUBLIC_MODE)
    if callback:
        written[CALLBACK_FILE] = ((json.dumps(dict(callback, serial=serial or ''), indent=2) + '\n').encode('utf-8'), SECRET_MODE)
    stale = [LAYOUT_FILE, CALLBACK_FILE] + list(PAYLOAD_MODES)
    for name in stale:
        if name not in written:
            try:
                os.unlink(os.path.join(run_dir, name))
            except FileNotFoundError:
                pass
    for name, (data, mode) in written.items():
        write_file(os.path.join(run_dir, name), data, mode)
    return sorted(written)
