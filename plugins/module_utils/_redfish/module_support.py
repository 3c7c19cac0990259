# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every Redfish module shares: the option spec (documented in the ``redfish`` doc fragment) and
the run loop that opens the client, maps typed errors to ``fail_json`` and always closes the session."""

from __future__ import annotations

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from .connection import HAS_SUSHY, SUSHY_IMPORT_ERROR, ConnectionOptions, RedfishClient, normalize_baseuri
from .errors import RedfishError


def redfish_argument_spec(**extra: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    spec: dict[str, dict[str, t.Any]] = dict(
        baseuri=dict(type='str', required=True),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        timeout=dict(type='int', default=30),
        retries=dict(type='int', default=3),
        system_id=dict(type='str'),
        manager_id=dict(type='str'),
    )
    spec.update(extra)
    return spec


def check_connection_params(module: AnsibleModule) -> None:
    """Bad option values fail before any request is made."""
    params = module.params
    if not HAS_SUSHY:
        module.fail_json(msg=missing_required_lib('sushy'), exception=str(SUSHY_IMPORT_ERROR))
    if params['timeout'] < 1:
        module.fail_json(msg='timeout must be at least 1 second, got %d' % params['timeout'])
    if params['retries'] < 0 or params['retries'] > 10:
        module.fail_json(msg='retries must be between 0 and 10, got %d' % params['retries'])
    if params['password'] and not params['username']:
        module.fail_json(msg='password is set but username is not; give both')
    try:
        normalize_baseuri(params['baseuri'])
    except RedfishError as exc:
        module.fail_json(msg=exc.message)


def run_redfish(module: AnsibleModule, operation: t.Callable[[RedfishClient], dict[str, t.Any]]) -> None:
    """Open a client, run ``operation``, close the client (deleting the session), exit with its result (never returns)."""
    check_connection_params(module)
    client = RedfishClient(ConnectionOptions.from_params(module.params))
    failure: dict[str, t.Any] | None = None
    result: dict[str, t.Any] = {}
    try:
        client.open()
        result = operation(client)
        # what every Redfish module returns: the system acted on, the quirks that applied, the auth used
        result.setdefault('system', client.describe_system())
        result.setdefault('quirks', client.quirks().as_list())
        result.setdefault('auth_method', client.auth_mode)
    except RedfishError as exc:
        failure = dict(msg=str(exc), **exc.to_result())
    except Exception as exc:  # pylint: disable=broad-exception-caught
        failure = dict(msg='unexpected error while talking to %s: %s: %s' % (client.base_url, type(exc).__name__, exc),
                       exception=traceback.format_exc())
    finally:
        client.close()
    for warning in client.warnings:
        module.warn(warning)
    if failure is not None:
        module.fail_json(**failure)
    result.setdefault('bmc', client.base_url)
    module.exit_json(**result)
