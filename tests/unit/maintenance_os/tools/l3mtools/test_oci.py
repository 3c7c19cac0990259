# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image steps' registry settings (site.env) and how the OCI code's errors reach the journal."""

from __future__ import annotations

import pytest

from l3metal_oci import pull as _pull
from l3metal_oci.errors import NotFoundError, RegistryError
from l3mtools import oci
from l3mtools.common import ToolError


def test_the_steps_pull_with_the_collections_client_and_the_site_settings(monkeypatch, tmp_path):
    """The image steps call l3metal_oci's own functions (no copy of their own) with the site's registry settings."""
    ca = tmp_path / 'ca.pem'
    ca.write_text('pem')
    calls = []

    def fake(name):
        def pull(reference, target, **kwargs):
            calls.append((name, reference, target, kwargs))
            return 'result of ' + name
        return pull

    monkeypatch.setattr(_pull, 'pull_and_unpack', fake('pull_and_unpack'))
    monkeypatch.setattr(_pull, 'pull_blob_to_file', fake('pull_blob_to_file'))
    monkeypatch.setenv('OCI_INSECURE', 'true')
    monkeypatch.setenv('OCI_CA_FILE', str(ca))
    monkeypatch.delenv('OCI_AUTH_FILE', raising=False)
    assert oci.pull_and_unpack('r.example.com/os:1', '/mnt') == 'result of pull_and_unpack'
    assert oci.pull_blob_to_file('r.example.com/win:1', '/mnt/x.wim') == 'result of pull_blob_to_file'
    # no record file in the new system's root; the .wim pull keeps the client's defaults
    assert calls == [('pull_and_unpack', 'r.example.com/os:1', '/mnt', {'insecure': True, 'ca_path': str(ca), 'record': False}),
                     ('pull_blob_to_file', 'r.example.com/win:1', '/mnt/x.wim', {'insecure': True, 'ca_path': str(ca)})]


def test_registry_options_from_the_environment(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('pem')
    assert oci.registry_options({}) == {'insecure': False}
    assert oci.registry_options({'OCI_INSECURE': 'True', 'OCI_CA_FILE': str(ca)}) == {'insecure': True, 'ca_path': str(ca)}
    with pytest.raises(ToolError, match='OCI_INSECURE=maybe: use true or false'):
        oci.registry_options({'OCI_INSECURE': 'maybe'})
    with pytest.raises(ToolError, match='OCI_AUTH_FILE=/nope does not exist'):
        oci.registry_options({'OCI_AUTH_FILE': '/nope'})


def test_errors_are_one_line_with_the_settings_to_fix(monkeypatch):
    def unreachable(reference, target, **kwargs):
        raise RegistryError('cannot connect to https://r.example.com: refused')

    def missing(reference, target, **kwargs):
        raise NotFoundError('manifest not found')

    monkeypatch.delenv('OCI_INSECURE', raising=False)
    with pytest.raises(ToolError) as error:
        oci._call(unreachable, 'r.example.com/os:1', '/mnt')
    assert str(error.value) == ('unreachable of r.example.com/os:1 failed: cannot connect to https://r.example.com: refused '
                                '(registry settings of this step: OCI_CA_FILE, OCI_AUTH_FILE, OCI_INSECURE in /etc/l3metal/site.env)')
    with pytest.raises(ToolError, match=r'^missing of r.example.com/os:1 failed: manifest not found$'):
        oci._call(missing, 'r.example.com/os:1', '/mnt')
