# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_esxi_kickstart: the %firstboot report script is checked as text (what ESXi's Python 3.5+ can run, standard library
only) and executed here to compare its signature with the contract; against the real receiver it runs in
tests/integration/plugins/module_utils/test_esxi_firstboot.py."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import runpy
import sys

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils import _esxi_kickstart as ks
from ansible_collections.l3metal.provision.plugins.module_utils._contract import webhook as _webhook

CALLBACK = {'url': 'https://10.1.1.10:8443/', 'serial': 'XF-12345:ABC', 'job_id': '0b6d7ad4-5f3c-4d8e-9a51-2f4c1f0e9d21',
            'token': 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWpr'}
CA = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2FmZQ==\n-----END CERTIFICATE-----\n'
USER_KS = 'vmaccepteula\ninstall --firstdisk\nrootpw --iscrypted x\nreboot\n%firstboot --interpreter=busybox\nesxcli network ip set --ipv6-enabled=false\n'


def script_of(section: str) -> str:
    header, _newline, script = section.partition('\n')
    assert header == '%firstboot --interpreter=python'
    return script


def load(tmp_path, section: str) -> dict:
    path = tmp_path / 'firstboot.py'
    path.write_text(script_of(section))
    return runpy.run_path(str(path), run_name='not_main')  # defines everything, sends nothing


def test_the_signature_is_the_documented_hmac_and_the_receiver_accepts_it(tmp_path):
    script = load(tmp_path, ks.firstboot_report(CALLBACK))
    body = script['success_body']()
    request = script['signed_request'](body, 1767225600)
    headers = dict(request.header_items())
    delivery = ks.delivery_id(CALLBACK['job_id'])
    # computed independently, as docs/webhooks.md writes it
    message = b'v1:1767225600:' + delivery.encode() + b':' + body
    assert headers['X-l3metal-signature'] == 'v1=' + hmac.new(CALLBACK['token'].encode(), message, hashlib.sha256).hexdigest()
    # and as the contract's own code signs and verifies
    assert _webhook.sign(CALLBACK['token'], body, delivery, 1767225600) == {
        'X-L3metal-Timestamp': headers['X-l3metal-timestamp'], 'X-L3metal-Delivery': headers['X-l3metal-delivery'],
        'X-L3metal-Signature': headers['X-l3metal-signature']}
    assert _webhook.verify(CALLBACK['token'], body, headers, now=1767225600) == (delivery, 1767225600)
    assert _webhook.parse_body(body) == {'status': 'success', 'job_id': CALLBACK['job_id']}
    assert body == _webhook.encode_body(_webhook.success_body(CALLBACK['job_id']))
    assert request.full_url == 'https://10.1.1.10:8443/api/v1/status-webhook/XF-12345%3AABC'
    assert request.get_method() == 'POST' and headers['Content-type'] == 'application/json'


def test_another_token_does_not_verify(tmp_path):
    """Negative control for the test above: the receiver's check does tell tokens apart."""
    script = load(tmp_path, ks.firstboot_report(dict(CALLBACK, token='another-token-of-the-same-length-0123456')))
    body = script['success_body']()
    with pytest.raises(_webhook.SignatureError, match='does not match'):
        _webhook.verify(CALLBACK['token'], body, dict(script['signed_request'](body, 1767225600).header_items()), now=1767225600)


def test_the_script_is_python_3_5_with_the_standard_library_only():
    script = script_of(ks.firstboot_report(CALLBACK, ca_cert=CA))
    tree = ast.parse(script, feature_version=(3, 5))  # f-strings, variable annotations, := ... are refused
    modules = {alias.name.split('.')[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split('.')[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert modules and modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.AnnAssign, ast.JoinedStr))]
    with pytest.raises(SyntaxError):  # the check can fail
        ast.parse('x = f"{1}"', feature_version=(3, 5))


def test_the_token_is_used_to_sign_and_nowhere_else():
    tree = ast.parse(script_of(ks.firstboot_report(CALLBACK)))
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == 'TOKEN' and isinstance(node.ctx, ast.Load)]
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and any(use in ast.walk(node) for use in uses)]
    assert len(uses) == 1 and [function.name for function in functions] == ['signed_request']
    assert script_of(ks.firstboot_report(CALLBACK)).count(CALLBACK['token']) == 1  # the constant itself


def test_no_line_would_end_the_section():
    section = ks.firstboot_report(CALLBACK, ca_cert=CA)
    assert [line for line in section.splitlines() if line.lstrip().startswith('%')] == ['%firstboot --interpreter=python']


def test_the_report_comes_after_the_kickstarts_own_sections():
    text = ks.with_firstboot_report(USER_KS, CALLBACK)
    assert text.startswith(USER_KS.rstrip('\n') + '\n\n%firstboot --interpreter=python\n')
    headers = [line for line in text.splitlines() if line.startswith('%')]
    assert headers == ['%firstboot --interpreter=busybox', '%firstboot --interpreter=python']


def test_the_same_job_gives_the_same_text():
    """A rebuilt medium of the same job is the same bytes (task_iso then leaves it alone); another job is another event."""
    assert ks.firstboot_report(CALLBACK) == ks.firstboot_report(dict(CALLBACK))
    assert _webhook.DELIVERY_ID_PATTERN.match(ks.delivery_id(CALLBACK['job_id']))
    assert ks.delivery_id(CALLBACK['job_id']) != ks.delivery_id('another-job')


def test_constants_come_from_the_contract(tmp_path):
    script = load(tmp_path, ks.firstboot_report(CALLBACK, ca_cert=CA, attempts=3))
    assert (script['TIMESTAMP_HEADER'], script['DELIVERY_HEADER'], script['SIGNATURE_HEADER'], script['SIGNATURE_VERSION']) == (
        _webhook.TIMESTAMP_HEADER, _webhook.DELIVERY_HEADER, _webhook.SIGNATURE_HEADER, _webhook.SIGNATURE_VERSION)
    assert script['URL'].endswith(_webhook.WEBHOOK_PATH + 'XF-12345%3AABC')
    assert script['CA_CERT'] == CA and script['ATTEMPTS'] == 3


@pytest.mark.parametrize('change, message', [
    pytest.param({'url': 'ftp://x'}, 'ks_report.url', id='url'),
    pytest.param({'serial': 'bad serial'}, 'ks_report.serial', id='serial'),
    pytest.param({'serial': None}, 'ks_report.serial', id='no-serial'),
    pytest.param({'job_id': 'a/b'}, 'ks_report.job_id', id='job-id'),
    pytest.param({'token': 'short'}, 'ks_report.token', id='token'),
    pytest.param({'token': 'x' * 20 + '\n'}, 'ks_report.token', id='token-newline'),
])
def test_bad_callback_values_name_the_field(change, message):
    with pytest.raises(ks.KickstartError, match=message) as error:
        ks.firstboot_report(dict(CALLBACK, **change))
    assert CALLBACK['token'] not in str(error.value)


def test_bad_ca_cert_and_attempts_are_refused():
    with pytest.raises(ks.KickstartError, match='ks_report.ca_cert'):
        ks.firstboot_report(CALLBACK, ca_cert='not a certificate')
    with pytest.raises(ks.KickstartError, match='attempts'):
        ks.firstboot_report(CALLBACK, attempts=0)


def test_the_body_is_json_sorted_as_the_contract_encodes_it(tmp_path):
    script = load(tmp_path, ks.firstboot_report(CALLBACK))
    assert json.loads(script['success_body']()) == {'job_id': CALLBACK['job_id'], 'status': 'success'}
