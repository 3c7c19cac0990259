# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection: base URI, retry policy, sessions and typed errors, against replayed vendor JSON."""

from __future__ import annotations


import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import BootManager
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import (
    ConnectionOptions,
    RedfishClient,
    normalize_baseuri,
    redfish_policy,
)
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.errors import (
    RedfishAuthError,
    RedfishHTTPError,
    RedfishSelectionError,
    parse_bmc_messages,
)
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import VirtualMediaManager


@pytest.mark.parametrize('value, expected', [
    ('10.0.0.5', 'https://10.0.0.5'),
    ('bmc01.example.com:8443', 'https://bmc01.example.com:8443'),
    ('http://127.0.0.1:8000/redfish/v1/', 'http://127.0.0.1:8000'),
    ('https://BMC.example.com', 'https://bmc.example.com'),
    ('[fd00::5]:443', 'https://[fd00::5]:443'),
    ('  https://[fd00::5]  ', 'https://[fd00::5]'),
])
def test_baseuri_forms(value, expected):
    assert normalize_baseuri(value) == expected


@pytest.mark.parametrize('value, message', [
    ('', 'empty'),
    ('ftp://bmc', 'only http and https'),
    ('https://root:calvin@bmc', 'must not contain credentials'),
    ('https://bmc:99999', 'not a valid'),
])
def test_bad_baseuri_is_rejected_with_the_reason(value, message):
    with pytest.raises(RedfishSelectionError, match=message):
        normalize_baseuri(value)


def test_the_redfish_backoff_is_the_shared_policy_without_jitter():
    policy = redfish_policy(5)
    assert policy.retries == 5 and policy.attempts == 6
    assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]  # predictable: no jitter
    assert policy.delay(0, retry_after=7) == 7 and policy.delay(0, retry_after=120) == 30.0
    assert redfish_policy(-1).attempts == 1


def test_extended_messages_keep_ids_even_without_text():
    ilo = {'error': {'code': 'iLO.0.10.ExtendedInfo', 'message': 'See @Message.ExtendedInfo for more information.',
                     '@Message.ExtendedInfo': [{'MessageId': 'iLO.2.18.UnableToModifyDuringSystemPOST'}]}}
    messages = parse_bmc_messages(ilo)
    assert [m.message_id for m in messages] == ['iLO.0.10.ExtendedInfo', 'iLO.2.18.UnableToModifyDuringSystemPOST']
    assert parse_bmc_messages({'error': {'code': 'X', 'message': 'plain'}})[0].message == 'plain'
    assert parse_bmc_messages('not json') == []


def test_session_is_created_and_deleted_when_offered(replay, connect):
    bmc = replay('hpe_ilo5')
    client = connect(bmc)
    assert client.auth_mode == 'session'
    client.system()
    assert len(bmc.sessions) == 1
    assert all('X-Auth-Token' in r.headers for r in bmc.requests[2:])  # after root and session creation: token only
    assert not any('Authorization' in r.headers for r in bmc.requests[2:])
    client.close()
    assert bmc.sessions == {} and bmc.deleted_sessions == ['/redfish/v1/SessionService/Sessions/1']


def test_session_is_deleted_when_the_operation_fails(replay):
    bmc = replay('dell_idrac9')
    with pytest.raises(RedfishSelectionError):
        with RedfishClient(ConnectionOptions(baseuri=bmc.url, username='admin', password='secret', system_id='System.Embedded.9')) as client:
            client.system()
    assert bmc.sessions == {} and len(bmc.deleted_sessions) == 1


def test_wrong_password_is_an_auth_error_naming_the_user(replay, connect):
    bmc = replay('dell_idrac9')
    with pytest.raises(RedfishAuthError) as caught:
        connect(bmc, password='nope').system()
    error = caught.value
    assert error.status == 401 and "user 'admin'" in str(error)
    assert 'SYS415' in str(error)  # the BMC's own message id
    assert bmc.sessions == {}


def test_transient_errors_are_retried_with_backoff_only_where_safe(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    bmc.fail('GET', r'/Systems$', 'internal_error', times=2)
    client = connect(bmc)
    client.system()
    assert len(bmc.sent('GET', r'/Systems$')) == 3 and sleeps == [1.0, 2.0]
    # a reset is not idempotent: a 500 on it is reported, not repeated
    bmc.fail('POST', r'ComputerSystem.Reset$', 'internal_error')
    with pytest.raises(RedfishHTTPError) as caught:
        BootManager(client).reset('On')
    assert len(bmc.sent('POST', r'ComputerSystem.Reset$')) == 1
    error = caught.value
    assert error.request == 'POST /redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset'
    assert error.status == 500 and 'IDRAC.1.6.SYS446' in error.message_ids()
    assert 'Retry the operation after a few minutes' in str(error)
    assert error.to_result()['bmc'] == bmc.url


def test_retries_are_bounded(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    bmc.fail('GET', r'/Systems$', 'internal_error', times=10)
    with pytest.raises(RedfishHTTPError):
        connect(bmc, retries=2).system()
    assert len(bmc.sent('GET', r'/Systems$')) == 3 and len(sleeps) == 2


def test_system_choice_lists_the_systems(replay, connect):
    bmc = replay('dell_idrac9')
    bmc.resources['/redfish/v1/Systems']['Members'].append({'@odata.id': '/redfish/v1/Systems/System.Embedded.2'})
    with pytest.raises(RedfishSelectionError, match=r'has 2 systems; set system_id to one of: System.Embedded.1, System.Embedded.2'):
        connect(bmc).system()
    assert connect(bmc, system_id='System.Embedded.1').system().identity == 'System.Embedded.1'


def test_no_session_post_when_the_root_offers_none(replay, connect):
    bmc = replay('supermicro_x12')
    root = bmc.resources['/redfish/v1']
    del root['SessionService'], root['Links']
    client = connect(bmc)
    assert client.auth_mode == 'basic'
    VirtualMediaManager(client).slots()
    assert bmc.sent('POST') == []
    assert all('Authorization' in r.headers for r in bmc.requests[1:])


def test_401_at_session_login_names_the_login_after_the_basic_auth_fallback(replay, connect):
    bmc = replay('dell_idrac9')
    with pytest.raises(RedfishAuthError) as caught:
        connect(bmc, password='nope').system()
    error = caught.value
    assert error.request == 'POST /redfish/v1/SessionService/Sessions' and error.status == 401
    assert 'login' in str(error) and 'basic authentication' in str(error)
    assert 'SYS415' in str(error)
    # the login, then the one request made with basic auth; nothing else
    assert [(r.method, r.path.rsplit('/', 1)[-1]) for r in bmc.requests] == [('GET', 'v1'), ('POST', 'Sessions'), ('GET', 'Systems')]
