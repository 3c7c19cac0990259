# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may pull and push: HTTP Basic against an htpasswd file (bcrypt entries only), or the receiver's API token.

Push (and delete) always needs credentials.  Pull is open unless ``pull_auth`` is set; open pull ignores
whatever Authorization a client sends (containers/image sends empty Basic credentials after a challenge).
``GET /v2/`` answers 401 with ``WWW-Authenticate: Basic realm="l3metal-receiver"`` until valid credentials
come: that challenge is how skopeo, podman and oras learn that they must send their credentials on push.

Accepted credentials: ``user:password`` of the htpasswd file (``htpasswd -nbB user pass``; ``$2y$``, ``$2a$``,
``$2b$``, the only kind distribution and sushy-tools accept too), any user name with the API token as its
password (``podman login -u token -p "$TOKEN"``), or ``Authorization: Bearer <API token>``.  A bcrypt check
costs milliseconds by design, so a verified (user, password) pair is remembered (as a SHA-256 of the
password) until the file changes; failures are never remembered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import typing as t
from pathlib import Path

from .errors import RegistryError

try:
    import bcrypt
    HAS_BCRYPT = True
except ImportError:  # pragma: no cover - depends on the host
    bcrypt = None  # type: ignore[assignment]
    HAS_BCRYPT = False

REALM = 'l3metal-receiver'
CHALLENGE = {'WWW-Authenticate': 'Basic realm="%s"' % REALM}
_BCRYPT_PREFIXES = ('$2y$', '$2a$', '$2b$')


def parse_htpasswd(text: str, source: str) -> dict[str, bytes]:
    """user -> bcrypt hash; a line of another hash kind is an error naming the file and line."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        user, sep, hashed = line.partition(':')
        if not sep or not user:
            raise ValueError('%s line %d: expected user:bcrypt-hash' % (source, number))
        if not hashed.startswith(_BCRYPT_PREFIXES):
            raise ValueError('%s line %d (user %s): only bcrypt entries are supported (htpasswd -B)' % (source, number, user))
        users[user] = hashed.encode('ascii')
    return users


class Htpasswd:
    """An htpasswd file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        if not HAS_BCRYPT:
            raise ValueError('--oci-htpasswd needs the Python library bcrypt (pip install bcrypt; Debian: python3-bcrypt)')
        self.path = Path(path)
        self._signature: tuple[int, int] | None = None
        self._users: dict[str, bytes] = {}
        self._verified: set[tuple[str, bytes]] = set()
        self.load()

    def load(self) -> None:
        st = os.stat(self.path)
        signature = (st.st_mtime_ns, st.st_size)
        if signature != self._signature:
            self._users = parse_htpasswd(self.path.read_text(encoding='utf-8'), str(self.path))
            self._verified = set()
            self._signature = signature

    async def check(self, user: str, password: str) -> bool:
        try:
            self.load()
        except (OSError, ValueError):
            return False  # a broken file refuses everyone until it is fixed (the error was shown at start)
        hashed = self._users.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode('utf-8')).digest())
        if key in self._verified:
            return True
        secret = password.encode('utf-8')
        if len(secret) > 72:
            return False  # bcrypt's limit; bcrypt 5 raises instead of truncating
        ok = await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, secret, hashed)
        if ok:
            self._verified.add(key)
        return bool(ok)


class Authenticator:
    """The registry's access rule for one receiver."""

    def __init__(self, htpasswd: Htpasswd | None, api_token: str | None, pull_auth: bool) -> None:
        self.htpasswd = htpasswd
        self.api_token = api_token or ''
        self.pull_auth = pull_auth

    @property
    def has_credentials(self) -> bool:
        return self.htpasswd is not None or bool(self.api_token)

    def _token_ok(self, given: str) -> bool:
        return bool(self.api_token) and hmac.compare_digest(given.encode('utf-8', 'replace'), self.api_token.encode('utf-8'))

    async def authenticated(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _sep, value = header.strip().partition(' ')
        if scheme.lower() == 'bearer':
            return self._token_ok(value.strip())
        if scheme.lower() != 'basic':
            return False
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode('utf-8').partition(':')
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        if self._token_ok(password):
            return True
        return self.htpasswd is not None and await self.htpasswd.check(user, password)

    async def require(self, header: str | None, action: str) -> None:
        """Raise ``UNAUTHORIZED`` (with the challenge) unless ``action`` ('ping', 'pull', 'push', 'delete') is allowed."""
        if action == 'pull' and not self.pull_auth:
            return
        if not self.has_credentials:
            if action in ('ping', 'pull'):
                return
            raise RegistryError(403, 'DENIED', 'push is disabled: the receiver has no registry credentials '
                                '(start it with --oci-htpasswd FILE or --api-token-file FILE)')
        if await self.authenticated(header):
            return
        raise RegistryError(401, 'UNAUTHORIZED', 'authentication required' if not header else 'wrong credentials',
                            detail=[{'Type': 'repository', 'Action': action}] if action != 'ping' else None, headers=CHALLENGE)


def basic_header(user: str, password: str) -> str:
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode('utf-8')).decode('ascii')


AUTH_ACTIONS: t.Mapping[str, str] = {'GET': 'pull', 'HEAD': 'pull', 'POST': 'push', 'PATCH': 'push', 'PUT': 'push', 'DELETE': 'delete'}
