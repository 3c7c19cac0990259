# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry credentials: given ones, docker/podman ``config.json`` files, credential helpers; auth challenges.

Standard library only.  ``RegistryClient`` (``client.py``) answers the challenges with these.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass

from .errors import AuthenticationError

__all__ = ['Credentials', 'load_docker_config', 'parse_challenge']

_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        return 'Basic ' + base64.b64encode(('%s:%s' % (self.username, self.password)).encode('utf-8')).decode('ascii')


def _config_keys(registry: str) -> list[str]:
    keys = [registry, 'https://' + registry, 'http://' + registry, 'https://%s/v1/' % registry, 'https://%s/v2/' % registry]
    if registry in ('docker.io', 'index.docker.io', 'registry-1.docker.io'):
        keys.insert(0, 'https://index.docker.io/v1/')
    return keys


def load_docker_config(path: str, registry: str) -> Credentials | None:
    """Credentials for ``registry`` from a docker/podman ``config.json`` (or ``auth.json``), or ``None``.

    ``path`` may be the file or the directory holding ``config.json``.  Reads ``auths`` (``auth`` =
    base64 ``user:password``, or ``username``/``password``), then ``credHelpers``/``credsStore`` through
    ``docker-credential-<helper> get``.  ``identitytoken`` (OAuth refresh tokens) is not supported.
    """
    if os.path.isdir(path):
        path = os.path.join(path, 'config.json')
    try:
        with open(path, 'rb') as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise AuthenticationError('docker_config: %s does not exist' % path) from None
    except (OSError, ValueError) as exc:
        raise AuthenticationError('docker_config: cannot read %s: %s' % (path, exc)) from None
    if not isinstance(config, dict):
        raise AuthenticationError('docker_config: %s is not a JSON object' % path)
    auths = config.get('auths') or {}
    for key in _config_keys(registry):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if not isinstance(entry, dict):
            continue
        if entry.get('auth'):
            try:
                user, _sep, password = base64.b64decode(entry['auth']).decode('utf-8').partition(':')
            except (ValueError, UnicodeDecodeError):
                raise AuthenticationError('docker_config: %s: auths[%r].auth is not base64 of user:password' % (path, key)) from None
            return Credentials(user, password)
        if entry.get('username'):
            return Credentials(str(entry['username']), str(entry.get('password', '')))
        if entry.get('identitytoken'):
            raise AuthenticationError('docker_config: %s: auths[%r] holds an identitytoken, which is not supported; '
                                      'give username/password instead' % (path, key))
    helper = (config.get('credHelpers') or {}).get(registry) or config.get('credsStore')
    if helper:
        return _credential_helper(str(helper), registry, path)
    return None


def _credential_helper(helper: str, registry: str, path: str) -> Credentials | None:
    binary = 'docker-credential-' + helper
    try:
        proc = subprocess.run([binary, 'get'], input=registry.encode(), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthenticationError('docker_config: %s names credential helper %s, which cannot run: %s' % (path, binary, exc)) from None
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(proc.stdout)
        return Credentials(str(answer['Username']), str(answer['Secret']))
    except (ValueError, KeyError, TypeError):
        raise AuthenticationError('docker_config: %s get printed no JSON with Username and Secret' % binary) from None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> (``bearer``, {realm, service, scope})."""
    scheme, _sep, rest = header.strip().partition(' ')
    params = {key.lower(): (quoted.replace('\\"', '"') if quoted is not None and quoted != '' else bare or '')
              for key, quoted, bare in _AUTH_PARAM.findall(rest)}
    return scheme.lower(), params
