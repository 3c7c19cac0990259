# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The %firstboot report of an ESXi kickstart against the real webhook receiver.

The script is taken from the kickstart text task_iso would write and run the way the installed host runs it:
a Python interpreter with nothing but the standard library (``python3 -I -S``: no site-packages, no PYTHON*
variables).  ESXi's own Python cannot run here; that it is Python 3.5+ is checked in the unit tests.
"""

from __future__ import annotations

import runpy
import time
import typing as t

from l3metal_lab.esxi import firstboot_sections, run_firstboot
from l3metal_lab.ports import free_port

from ansible_collections.l3metal.provision.plugins.module_utils import _esxi_kickstart

ESXI_RECIPE = {'task_target': 'install-esxi.target'}
KS = 'vmaccepteula\ninstall --firstdisk\nrootpw --iscrypted x\nreboot\n'


def kickstart_for(job: t.Mapping[str, t.Any], **options: t.Any) -> str:
    return _esxi_kickstart.with_firstboot_report(KS, job['callback'], **options)


def provisioning_job(receiver) -> dict[str, t.Any]:
    job = receiver.create_job('ESX-%d' % free_port(), recipe=ESXI_RECIPE)
    receiver.set_status(job['job_id'], 'provisioning')
    return job


def statuses(receiver, job_id: str) -> list[tuple[str, str]]:
    return [(event['status'], event['source']) for event in receiver.events(job_id) if event['type'] == 'status']


def test_firstboot_reports_success_and_the_job_succeeds(receiver, tmp_path):
    job = provisioning_job(receiver)
    [run] = run_firstboot(kickstart_for(job), tmp_path)
    assert run.rc == 0 and 'success delivered to %s/api/v1/status-webhook/%s (HTTP 200)' % (receiver.url, job['server_serial']) in run.stderr
    assert receiver.get_job(job['job_id'])['status'] == 'succeeded'
    assert statuses(receiver, job['job_id'])[-1] == ('succeeded', 'node')
    assert job['token'] not in run.stderr


def test_a_second_run_is_the_same_event(receiver, tmp_path):
    """The same kickstart run again (a rebuilt medium, a retried boot) sends the same delivery id: 409, counted as delivered."""
    job = provisioning_job(receiver)
    text = kickstart_for(job)
    assert run_firstboot(text, tmp_path / 'one')[0].rc == 0
    [again] = run_firstboot(text, tmp_path / 'two')
    assert again.rc == 0 and 'HTTP 409' in again.stderr
    assert [status for status, _source in statuses(receiver, job['job_id'])].count('succeeded') == 1


def test_a_job_whose_outcome_is_recorded_refuses_the_report_and_the_script_says_so(receiver, tmp_path):
    """A 409 that is not ``duplicate_delivery`` (here: the job failed before the host booted) is a refusal, exit 1."""
    job = provisioning_job(receiver)
    receiver.set_status(job['job_id'], 'failed', failed_step='redfish-boot', reason='the BMC timed out')
    before = receiver.snapshot()
    [run] = run_firstboot(kickstart_for(job), tmp_path)
    assert run.rc == 1 and 'refused by' in run.stderr and 'HTTP 409' in run.stderr and 'outcome_recorded' in run.stderr, run.stderr
    assert receiver.snapshot() == before and receiver.get_job(job['job_id'])['status'] == 'failed'


def test_a_wrong_token_is_refused_and_changes_nothing(receiver, tmp_path):
    job = provisioning_job(receiver)
    before = receiver.snapshot()
    [run] = run_firstboot(kickstart_for(dict(job, callback=dict(job['callback'], token='not-the-token-of-this-job-000'))), tmp_path)
    assert run.rc == 1 and 'refused by' in run.stderr and 'HTTP 401' in run.stderr
    assert receiver.snapshot() == before and receiver.get_job(job['job_id'])['status'] == 'provisioning'


def test_a_host_clock_two_hours_off_signs_with_the_receivers_time(receiver, tmp_path):
    """Simulated wrong clock (the script's clock function, as a hardware clock kept in local time would give it):
    the receiver refuses the first attempt (timestamp out of range) and the script retries with its Date header."""
    job = provisioning_job(receiver)
    [(_header, script)] = [section for section in firstboot_sections(kickstart_for(job)) if 'python' in section[0]]
    path = tmp_path / 'firstboot.py'
    path.write_text(script)
    namespace = runpy.run_path(str(path), run_name='firstboot')
    slept: list[float] = []
    assert namespace['main'](clock=lambda: time.time() - 7200, sleep=slept.append) == 0
    assert receiver.get_job(job['job_id'])['status'] == 'succeeded' and slept == []


def test_an_unreachable_receiver_gives_up_after_its_attempts(receiver, tmp_path):
    job = provisioning_job(receiver)
    callback = dict(job['callback'], url='http://127.0.0.1:%d' % free_port())  # nothing listens there
    started = time.monotonic()
    [run] = run_firstboot(kickstart_for(dict(job, callback=callback), attempts=3), tmp_path)
    assert run.rc == 75 and 'gave up after 3 attempts: cannot reach' in run.stderr
    assert time.monotonic() - started < 30  # 2 + 4 s of backoff at most
    assert receiver.get_job(job['job_id'])['status'] == 'provisioning'


def test_https_receiver_with_the_ca_in_the_kickstart(receiver_factory, tls_files, tmp_path):
    secure = receiver_factory(tls=tls_files)
    job = provisioning_job(secure)
    ca_pem = open(tls_files[2], encoding='ascii').read()
    [without] = run_firstboot(kickstart_for(job, attempts=1), tmp_path / 'without')
    assert without.rc == 75 and 'CERTIFICATE_VERIFY_FAILED' in without.stderr  # the host's trust store does not know the test CA
    [run] = run_firstboot(kickstart_for(job, ca_cert=ca_pem), tmp_path / 'with')
    assert run.rc == 0, run.stderr
    assert secure.get_job(job['job_id'])['status'] == 'succeeded'
