# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input to the OCI modules fails with a message naming the field, before any registry is contacted."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.l3metal.provision.plugins.modules import oci_artifact, oci_artifact_info


def run(module, args: dict, capsys) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('args, error, words', [
    ({'reference': 'ubuntu:22.04', 'state': 'pulled', 'dest': '/tmp/x'}, 'invalid_reference', 'registry host'),
    ({'reference': 'r.example.com/Bad:1', 'state': 'absent'}, 'invalid_reference', 'lower case'),
    ({'reference': 'r.example.com/a:1', 'state': 'present', 'files': [{'media_type': 'x'}]}, None, 'files[0]'),
    ({'reference': 'r.example.com/a:1', 'state': 'present', 'files': [{'path': '/x', 'bogus': 1}]}, None, 'unknown keys bogus'),
    ({'reference': 'r.example.com/a:1', 'state': 'present'}, None, 'files'),
    ({'reference': 'r.example.com/a:1', 'state': 'pulled'}, None, 'dest'),
])
def test_bad_input_fails_cleanly(args, error, words, capsys):
    result = run(oci_artifact, args, capsys)
    assert result['failed'] and words in result['msg']
    if error:
        assert result['error'] == error
    assert 'Traceback' not in result['msg']


def test_push_of_a_missing_file_names_it(tmp_path, capsys):
    result = run(oci_artifact, {'reference': '127.0.0.1:9/a:1', 'state': 'present', 'files': [str(tmp_path / 'nope.tar')], 'insecure': True},
                 capsys)
    assert result['failed'] and 'nope.tar is not a regular file' in result['msg']


def test_info_reports_unreachable_registry_with_the_url(capsys):
    result = run(oci_artifact_info, {'reference': '127.0.0.1:9/a:1', 'insecure': True, 'timeout': 2, 'password': 'hunter2',
                                     'username': 'u'}, capsys)
    assert result['failed'] and result['error'] == 'registry' and 'http://127.0.0.1:9' in result['msg']
    assert 'hunter2' not in json.dumps(result)
