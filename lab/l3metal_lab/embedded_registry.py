# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiver's embedded OCI registry (``--oci-layout``) as a lab registry: what a receiver needs to serve ``/v2/``
from an OCI image layout with a bcrypt push user, and the same client view as ``registry.Registry`` (``host``,
``url``, ``client_options()``), so the lab pushes to either with one code path::

    embedded = EmbeddedRegistry(work / 'oci', port)           # a random push password, written to an htpasswd file
    receiver = Receiver(work / 'receiver', port=port, extra_args=embedded.receiver_args())
    push_artifact('%s/os-images/x:1' % embedded.host, files, **embedded.client_options())

Pull is open (the receiver's default): the maintenance OS's image steps send no credentials.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import typing as t
from pathlib import Path

import bcrypt

PUSH_USER = 'ci'


def write_htpasswd(path: Path, users: t.Mapping[str, str], rounds: int = 4) -> Path:
    """An htpasswd file with bcrypt entries (what ``htpasswd -nbB`` writes); 0600.  ``rounds`` 4: a lab, not a site."""
    path.write_text(''.join('%s:%s\n' % (user, bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode())
                            for user, password in users.items()))
    path.chmod(0o600)
    return path


class EmbeddedRegistry:
    """``/v2/`` of a receiver on 127.0.0.1:``port``: the layout ``directory/layout``, push user ``ci`` with a random password."""

    def __init__(self, directory: Path, port: int, username: str = PUSH_USER, password: str | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.layout = self.directory / 'layout'
        self.port = port
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.htpasswd = write_htpasswd(self.directory / 'htpasswd', {username: self.password})

    def receiver_args(self) -> list[str]:
        """The receiver options that turn on ``/v2/`` (open pull, push with the htpasswd user)."""
        return ['--oci-layout', str(self.layout), '--oci-htpasswd', str(self.htpasswd)]

    @property
    def host(self) -> str:
        return '127.0.0.1:%d' % self.port

    @property
    def url(self) -> str:
        return 'http://' + self.host

    @property
    def insecure(self) -> bool:
        return True  # the lab's receiver speaks plain HTTP

    def client_options(self) -> dict[str, t.Any]:
        """Keyword arguments for the collection's OCI functions (and ``oci_artifact``'s options) to push here."""
        return {'insecure': True, 'username': self.username, 'password': self.password}

    # -- what is stored (read from the layout on disk, not through the receiver) -------------------------------------

    def index(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], json.loads((self.layout / 'index.json').read_text()))

    def tags(self) -> dict[str, str]:
        """``repository:tag`` -> manifest digest, from ``index.json``'s ``org.opencontainers.image.ref.name`` annotations."""
        found = {}
        for entry in self.index().get('manifests', []):
            name = (entry.get('annotations') or {}).get('org.opencontainers.image.ref.name')
            if name:
                found[name] = entry['digest']
        return found

    def blob_path(self, digest: str) -> Path:
        algorithm, value = digest.split(':', 1)
        return self.layout / 'blobs' / algorithm / value

    def manifest(self, repository_tag: str) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], json.loads(self.blob_path(self.tags()[repository_tag]).read_bytes()))

    def layer_digests(self, repository_tag: str) -> list[str]:
        """The stored layers of a tag, each checked against its name (sha256 of the file on disk)."""
        digests = []
        for layer in self.manifest(repository_tag)['layers']:
            path = self.blob_path(layer['digest'])
            with open(path, 'rb') as stream:
                actual = 'sha256:' + hashlib.file_digest(stream, 'sha256').hexdigest()
            if actual != layer['digest'] or path.stat().st_size != layer['size']:
                raise AssertionError('%s: %s hashes to %s (%d bytes), its descriptor says %s (%d bytes)'
                                     % (repository_tag, path, actual, path.stat().st_size, layer['digest'], layer['size']))
            digests.append(layer['digest'])
        return digests
