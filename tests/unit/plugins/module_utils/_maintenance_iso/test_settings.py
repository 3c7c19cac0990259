# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module's options checked once: every error names its option."""

from __future__ import annotations

import json

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.errors import MaintenanceIsoError
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.settings import (
    DEFAULT_MIRROR,
    SiteSettings,
    host_mirror,
    spec_from_params,
)


@pytest.mark.parametrize('overrides, option, message', [
    ({'label': 'l3m maint'}, 'label', 'upper-case letters, digits and "_"'),
    ({'label': 'X' * 33}, 'label', 'at most 32'),
    ({'name': '../iso'}, 'name', 'letters, digits'),
    ({'kernel_cmdline_extra': 'console=ttyS0; reboot'}, 'kernel_cmdline_extra', "';' not allowed (GRUB would read it"),
    ({'kernel_cmdline_extra': 'x=$HOME'}, 'kernel_cmdline_extra', "'$' not allowed"),
    ({'base': 'bootc'}, 'bootc_image', 'base=bootc needs the bootc base image'),
    ({'bootc_image': 'quay.io/fedora/fedora-bootc:43'}, 'bootc_image', 'only used with base=bootc'),
    ({'suite': 'Trixie!'}, 'suite', 'is not a Debian suite name'),
    ({'mirror': 'ftp://ftp.debian.org/debian'}, 'mirror', 'is not an http(s) URL'),
    ({'squashfs_level': 23}, 'squashfs_level', 'zstd levels go from 1 to 22'),
    ({'keep': -1}, 'keep', 'must be 0'),
    ({'tools_registry': 'Registry Example/x'}, 'tools_registry', 'is not a registry'),
    ({'tool_build_args': {'firmware-flasher': {'BASE': 'x'}}}, 'tool_build_args', "'BASE' cannot be set"),
    ({'tool_build_args': {'firmware-flasher': 'x'}}, 'tool_build_args', 'must be a mapping'),
    ({'site': {'receiver_url': 'provision.example.com'}}, 'site.receiver_url', 'is not an http(s) URL'),
    ({'site': {'node_key': 'two words'}}, 'site.node_key', 'must be one word'),
    ({'site': {'registry_auth': '{"auths": '}}, 'site.registry_auth', 'not JSON'),
    ({'site': {'registry_auth': '[1]'}}, 'site.registry_auth', 'must be a mapping'),
    ({'site': {'receiver_ca': 'not a certificate'}}, 'site.receiver_ca', 'expected PEM certificate text'),
    ({'containerfile': 'maintenance_os/Nope'}, 'containerfile', 'does not exist'),
])
def test_bad_options_are_refused_naming_the_option(params, overrides, option, message):
    with pytest.raises(MaintenanceIsoError) as info:
        spec_from_params(dict(params, **overrides))
    assert info.value.option == option
    assert message in str(info.value)
    assert str(info.value).startswith(option + ': ')


def test_src_must_hold_the_maintenance_os_sources(params, tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(MaintenanceIsoError, match=r'^src: .*empty is not a checkout or installed copy of the collection \(no maintenance_os/Containerfile'):
        spec_from_params(dict(params, src=str(tmp_path / 'empty')))


def test_dest_must_be_a_directory_whose_parent_exists(params, tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(MaintenanceIsoError, match='dest: .* exists and is not a directory'):
        spec_from_params(dict(params, dest=str(tmp_path / 'file')))
    with pytest.raises(MaintenanceIsoError, match='dest: the parent directory of .* does not exist'):
        spec_from_params(dict(params, dest=str(tmp_path / 'no' / 'such')))


def test_site_and_site_dir_exclude_each_other_and_a_site_dir_needs_site_env(params, tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    with pytest.raises(MaintenanceIsoError, match='site_dir: .* has no site.env'):
        spec_from_params(dict(params, site_dir=str(site)))
    with pytest.raises(MaintenanceIsoError, match='site: give site or site_dir, not both'):
        spec_from_params(dict(params, site_dir=str(site), site={'node_key': 'k'}))


def test_the_kernel_command_line_is_the_live_arguments_then_the_extra_ones(make_spec):
    spec = make_spec(label='L3M_TEST', kernel_cmdline_extra='console=ttyS0,115200n8   l3metal.receiver=http://10.0.2.2:18480')
    assert spec.kernel_cmdline == ('root=live:CDLABEL=L3M_TEST rd.live.image rd.live.ram=1 rd.live.overlay.overlayfs=1 '
                                   'console=ttyS0,115200n8 l3metal.receiver=http://10.0.2.2:18480')
    assert make_spec().kernel_cmdline.endswith('rd.live.overlay.overlayfs=1 console=tty0 console=ttyS0,115200n8')


def test_site_settings_become_a_site_directory_in_the_example_format():
    site = SiteSettings(receiver_url='https://rx.example.com:8443', node_key=' k3y \n', registry_insecure=True,
                        registry_auth=json.dumps({'auths': {'r.example.com': {'auth': 'dTpw'}}}),
                        receiver_ca='-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----')
    files = site.files()
    assert sorted(files) == ['node-key', 'receiver-ca.pem', 'registry/auth.json', 'site.env']
    assert files['node-key'] == b'k3y\n'
    env = files['site.env'].decode()
    assert 'L3METAL_RECEIVER_URL="https://rx.example.com:8443"\n' in env
    assert 'L3METAL_RECEIVER_CA_FILE="/etc/l3metal/receiver-ca.pem"\n' in env
    assert 'L3METAL_NODE_KEY_FILE="/etc/l3metal/node-key"\n' in env
    assert 'OCI_AUTH_FILE="/etc/l3metal/registry/auth.json"\n' in env and 'OCI_INSECURE="true"\n' in env
    assert 'OCI_CA_FILE' not in env
    assert site.secret and not SiteSettings(receiver_url='http://x').secret


def test_an_iso_with_secrets_is_known_to_hold_them(make_spec, tmp_path):
    assert make_spec(site={'node_key': 'abc'}).has_secrets
    assert not make_spec(site={'receiver_url': 'http://rx:1'}).has_secrets
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'site.env').write_text('L3METAL_RECEIVER_URL="http://rx:1"\n')
    assert not make_spec(site_dir=str(site)).has_secrets
    (site / 'node-key').write_text('k\n')
    assert make_spec(site_dir=str(site)).has_secrets


def test_the_default_mirror_is_the_one_the_host_apt_sources_use(tmp_path):
    parts = tmp_path / 'sources.list.d'
    parts.mkdir()
    (parts / 'debian.sources').write_text(
        'Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n'
        'Types: deb deb-src\nURIs: http://ftp.de.debian.org/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n')
    assert host_mirror(sources=(), parts=str(parts)) == 'http://ftp.de.debian.org/debian'
    (parts / 'debian.sources').unlink()
    one_line = tmp_path / 'sources.list'
    one_line.write_text('# comment\ndeb [arch=amd64] http://mirror.example.org/debian bookworm main\n')
    assert host_mirror(sources=(str(one_line),), parts=str(parts)) == 'http://mirror.example.org/debian'
    one_line.write_text('deb http://archive.ubuntu.com/ubuntu noble main\n')  # not a Debian mirror
    assert host_mirror(sources=(str(one_line),), parts=str(parts)) == DEFAULT_MIRROR
