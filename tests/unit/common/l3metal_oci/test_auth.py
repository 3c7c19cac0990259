# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Credentials and auth challenges, offline: WWW-Authenticate parsing, docker config lookups."""

from __future__ import annotations

import base64
import json

import pytest

from l3metal_oci.auth import Credentials, load_docker_config, parse_challenge
from l3metal_oci.errors import AuthenticationError


def test_bearer_challenge_parsing():
    scheme, params = parse_challenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
                                     'scope="repository:os/rootfs:pull,push",error="insufficient_scope"')
    assert scheme == 'bearer'
    assert params == {'realm': 'https://auth.example.com/token', 'service': 'registry.example.com',
                      'scope': 'repository:os/rootfs:pull,push', 'error': 'insufficient_scope'}
    assert parse_challenge('Basic realm="test-realm"') == ('basic', {'realm': 'test-realm'})


def test_docker_config_lookup(tmp_path):
    config = tmp_path / 'config.json'
    config.write_text(json.dumps({'auths': {
        'https://registry.example.com': {'auth': base64.b64encode(b'ci:pa:ss').decode()},
        'other.example.com:5000': {'username': 'u', 'password': 'p'},
        'token.example.com': {'identitytoken': 'x'},
    }}))
    creds = load_docker_config(str(config), 'registry.example.com')
    assert (creds.username, creds.password) == ('ci', 'pa:ss')
    assert load_docker_config(str(tmp_path), 'other.example.com:5000') == Credentials('u', 'p')  # the directory works too
    assert load_docker_config(str(config), 'unknown.example.com') is None
    with pytest.raises(AuthenticationError, match='identitytoken'):
        load_docker_config(str(config), 'token.example.com')
    with pytest.raises(AuthenticationError, match='does not exist'):
        load_docker_config(str(tmp_path / 'missing.json'), 'registry.example.com')
