# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection and authentication options shared by the OCI registry modules."""

    DOCUMENTATION = r'''
options:
  reference:
    description:
      - The artifact, as V(registry/repository:tag), V(registry/repository@sha256:<digest>) or both
        (V(registry/repository:tag@sha256:<digest>); the digest then wins and is verified).
      - The registry host (with its port) is required; there is no implicit Docker Hub. Use V(docker.io/library/name) for it.
    type: str
    required: true
  username:
    description:
      - User name for the registry. Used for Basic auth, or sent to the token service when the registry
        answers with a Bearer challenge (Harbor, GHCR, Docker Hub, distribution with token auth).
      - When not given, credentials come from O(docker_config), if set; otherwise requests are anonymous.
    type: str
  password:
    description:
      - Password or access token for O(username).
    type: str
  docker_config:
    description:
      - Path of a Docker/Podman credentials file (C(config.json) or C(auth.json)), or of the directory holding
        C(config.json). Its C(auths) entry for the registry is used (C(auth), or C(username)/C(password));
        C(credHelpers) and C(credsStore) are run as C(docker-credential-<helper> get).
      - Not read unless given (the default C(~/.docker/config.json) is not consulted implicitly), and ignored
        when O(username) is set.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate. Turn off only for tests; prefer O(ca_path) for a private CA.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) to verify the registry against, instead of the system trust store.
    type: path
  insecure:
    description:
      - Talk plain HTTP to the registry. Never chosen automatically; only for registries on a trusted network or tests.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the registry to answer (connect and each read), not for a whole transfer.
    type: float
    default: 60
requirements:
  - requests >= 2.25
'''
