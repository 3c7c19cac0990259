# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Site settings and the fallback channel: kernel command line, receiver URL, node key, which serial."""

from __future__ import annotations

import pytest

from provisioner import site
from provisioner.errors import ConfigError

KEY = 'k' * 64


def write(path, text):
    path.write_text(text)
    return str(path)


def test_kernel_command_line(tmp_path):
    cmdline = write(tmp_path / 'cmdline', 'BOOT_IMAGE=/vmlinuz l3metal.receiver=http://a:8080 quiet "l3metal.receiver=https://b:8443/x"\n')
    assert site.cmdline_value('l3metal.receiver', cmdline) == 'https://b:8443/x'  # the last one wins, quotes removed
    assert site.cmdline_value('l3metal.other', cmdline) is None
    assert site.cmdline_value('l3metal.receiver', str(tmp_path / 'missing')) is None
    unbalanced = write(tmp_path / 'odd', 'root="x l3metal.receiver=http://c:1\n')
    assert site.cmdline_value('l3metal.receiver', unbalanced) == 'http://c:1'


def test_receiver_url_from_the_command_line_or_site_env(tmp_path):
    none = write(tmp_path / 'none', 'quiet\n')
    assert site.receiver_url({site.RECEIVER_VARIABLE: 'https://site:8443'}, none) == 'https://site:8443'
    cmdline = write(tmp_path / 'cmdline', 'l3metal.receiver=http://10.0.0.1:8080\n')
    assert site.receiver_url({site.RECEIVER_VARIABLE: 'https://site:8443'}, cmdline) == 'http://10.0.0.1:8080'
    with pytest.raises(ConfigError, match='no receiver is configured'):
        site.receiver_url({}, none)
    with pytest.raises(ConfigError, match='not an http'):
        site.receiver_url({site.RECEIVER_VARIABLE: 'ftp://x'}, none)


def test_channel_uses_dmi_first_then_the_recipes_serial(tmp_path):
    env = {site.RECEIVER_VARIABLE: 'http://r:8080', site.NODE_KEY_VARIABLE: write(tmp_path / 'node-key', '# site key\n%s\n' % KEY)}
    dmi = write(tmp_path / 'product_serial', 'XF-DMI\n')
    placeholder = write(tmp_path / 'placeholder', 'To Be Filled By O.E.M.\n')
    no_cmdline = str(tmp_path / 'no-cmdline')
    recipe = {'callback': {'serial': 'XF-RECIPE', 'job_id': 'j1'}}
    assert site.channel([dmi], recipe, env, no_cmdline) == site.SiteChannel('http://r:8080', 'XF-DMI', KEY, None)
    assert site.channel([placeholder], recipe, env, no_cmdline).serial == 'XF-RECIPE'
    with pytest.raises(ConfigError, match='serial number is unknown'):
        site.channel([placeholder], None, env, no_cmdline)
    with pytest.raises(ConfigError, match='has no site node key'):
        site.channel([dmi], None, dict(env, **{site.NODE_KEY_VARIABLE: str(tmp_path / 'missing')}), no_cmdline)
    with pytest.raises(ConfigError, match='shorter than 32'):
        site.channel([dmi], None, dict(env, **{site.NODE_KEY_VARIABLE: write(tmp_path / 'short', 'abc\n')}), no_cmdline)
    with_ca = site.channel([dmi], None, dict(env, L3METAL_RECEIVER_CA_FILE='/etc/l3metal/receiver-ca.pem'), no_cmdline)
    assert with_ca.ca_file == '/etc/l3metal/receiver-ca.pem'
