# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection to the webhook receiver's job API (role l3metal.provision.webhook_receiver)."""

    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the webhook receiver as the host running the task reaches it, for example V(http://127.0.0.1:8080).
      - If not set, the value of the E(L3METAL_RECEIVER_URL) environment variable is used.
      - Set it once for several tasks with C(module_defaults) and the action group C(group/l3metal.provision.receiver).
    type: str
    required: true
  api_token:
    description:
      - "The receiver's API token (the content of its C(--api-token-file)), sent as C(Authorization: Bearer)."
      - Needed when the receiver was started with a token.
      - If not set, the value of the E(L3METAL_RECEIVER_API_TOKEN) environment variable is used.
    type: str
  validate_certs:
    description:
      - Verify the receiver's TLS certificate for an V(https://) O(url).
      - Set to V(false) only for a test receiver with a self-signed certificate; prefer O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the receiver's certificate.
    type: path
  request_timeout:
    description:
      - Seconds to wait for one answer from the receiver.
    type: float
    default: 30
requirements:
  - The webhook receiver (role C(l3metal.provision.webhook_receiver)) reachable from the host that runs the task.
notes:
  - The receiver normally runs on the controller, so run these tasks with C(delegate_to=localhost) or on the receiver's host.
'''
