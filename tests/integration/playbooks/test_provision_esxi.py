# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/provision_esxi.yml (role provision_esxi) from the stock installer ISO, without hand work.

The lab is the real receiver and a sushy-tools emulator.  The stock ISO is the installer-shaped stand-in of
``l3metal_lab.esxi`` (the real one cannot be had); the "installer" and the installed host are ``SimulatedNode(kind='esxi')``:
it reads the kernelopt of the boot.cfg in the ISO the emulator downloaded for CD 1 - without ``ks=`` it waits at the
boot prompt as the stock installer does - reads the kickstart where ``ks=`` says, power-cycles through the BMC (the
installer's reboot), then runs the kickstart's ``%firstboot`` scripts with ``python3 -I -S`` against the real receiver
(the installed host's first boot).
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing as t

import pytest

from l3metal_lab.esxi import build_installer_iso, firstboot_sections, read_iso_file
from l3metal_lab.httpserver import FileServer
from l3metal_lab.lab import role_task, serial
from l3metal_lab.media import pycdlib_tree
from l3metal_lab.sushy import ONE_CD_AND_USB

KS_CFG = 'vmaccepteula\ninstall --firstdisk --overwritevmfs\nrootpw --iscrypted $6$salt$hash\nnetwork --bootproto=dhcp\nreboot\n'
FAST = {'provision_serial': '100%', 'provision_max_fail_percentage': 100}
KSOPT = 'runweasel cdromBoot ks=cdrom:/KS.CFG'


def esxi_result(run, host: str = 'node-01') -> dict[str, t.Any]:
    found = [task.result['ansible_facts']['provision_esxi_result'] for task in run.tasks
             if task.host == host and 'provision_esxi_result' in (task.result.get('ansible_facts') or {})]
    assert found, run.output
    return found[-1]


def statuses(lab, job_id: str) -> list[str]:
    return [event['status'] for event in lab.receiver.events(job_id) if event['type'] == 'status']


def esxi_lab(factory, tmp_path, **lab_options):
    """A lab, the stock installer ISO on the controller, and an inventory that names it (nothing prepared by hand)."""
    lab = factory(nodes=1, **lab_options)
    stock = build_installer_iso(tmp_path / 'stock-build', tmp_path / 'VMware-VMvisor-Installer-8.0U3-24022510.x86_64.iso')
    inventory = lab.write_inventory(provision_installer_iso=str(stock.path), provision_ks_cfg=KS_CFG)
    return lab, inventory, stock


def esxi_media(lab) -> list[str]:
    directory = lab.receiver.media_dir / 'esxi'
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_stock_iso_installs_without_hand_work_and_the_host_reports_success(provisioning_lab_factory, collection_playbook, tmp_path):
    lab, inventory, stock = esxi_lab(provisioning_lab_factory, tmp_path)
    # a warm reboot, as many BMCs show it: the power state never leaves On, so only the report can end the wait
    node = lab.simulate(0, kind='esxi', step_seconds=1, off_seconds=2, reboot='warm')
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120, provision_report_timeout=120)).assert_ok()
    report = node.result()
    result = esxi_result(run)

    # remastered once into the receiver's media, served from there and inserted on CD 1
    [name] = esxi_media(lab)
    assert name.startswith('VMware-VMvisor-Installer-8.0U3-24022510.x86_64-ks-') and name.endswith('.iso')
    assert result['installer_iso_url'] == '%s/media/esxi/%s' % (lab.receiver.url, name) == result['boot_medium']['image']
    assert result['installer_iso']['built'] and result['installer_iso']['method'] == 'in_place'
    assert result['installer_iso']['src_sha256'] == hashlib.sha256(stock.path.read_bytes()).hexdigest()
    # the "installer" read the changed boot.cfg from the ISO the BMC downloaded, and the kickstart from CD 2
    assert report['kernelopt'] == {'runweasel': None, 'cdromBoot': None, 'ks': 'cdrom:/KS.CFG'}
    assert report['ks_cfg'].startswith(KS_CFG.rstrip('\n') + '\n\n%firstboot --interpreter=python\n')
    assert [header for header, _script in firstboot_sections(report['ks_cfg'])] == ['%firstboot --interpreter=python']
    assert set(pycdlib_tree(report['medium'], 'rr')) == {'ks.cfg'}  # still a kickstart-only medium
    # the installed host's first boot sent the signed success; the job ended succeeded by that report
    [firstboot] = report['firstboot']
    assert firstboot['rc'] == 0 and 'success delivered' in firstboot['stderr'], firstboot
    assert result['outcome'] == 'succeeded' and result['reported'] is True and result['status'] == 'complete'
    assert result['ended_by'] == 'report' and result['rebooted_after'] is None  # at once, not at the 120 s deadline
    assert float(result['reported_after']) < 60
    assert statuses(lab, result['job_id']) == ['queued', 'provisioning', 'succeeded', 'complete']
    success = [event for event in lab.receiver.events(result['job_id']) if event.get('status') == 'succeeded']
    assert success[0]['source'] == 'node'
    recipe = lab.receiver.get_job(result['job_id'])['recipe']
    assert base64.b64decode(recipe['ks_cfg']).decode() == KS_CFG  # the record is the user's kickstart, not the token
    assert lab.inserted(0) == {} and lab.system(0)['PowerState'] == 'On'
    # the token reached the medium but no output of the run
    token = [line for line in report['ks_cfg'].splitlines() if line.startswith('TOKEN = ')][0].split("'")[1]
    assert len(token) >= 16 and token not in run.stdout and token not in run.stderr
    assert token not in str(role_task(run, 'Build the task medium into the job\'s media directory').result)

    # installed with this kickstart: a new run leaves the server alone, and does not even read the ISO
    mark = len(lab.changing_requests())
    rerun = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120)).assert_ok()
    assert not rerun.changed and esxi_result(rerun)['outcome'] == 'unchanged' and lab.changing_requests()[mark:] == []
    assert esxi_media(lab) == [name]


def test_no_report_falls_back_to_the_installers_reboot(provisioning_lab_factory, collection_playbook, tmp_path):
    """The installed host cannot reach the receiver: after the report deadline the reboot alone ends the job, as before."""
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path)
    # the "install" outlasts the role's steps after the reset, and the power stays off long enough to be seen
    node = lab.simulate(0, kind='esxi', step_seconds=10, off_seconds=5, firstboot='skip')
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120, provision_report_timeout=4)).assert_ok()
    assert node.result()['outcome'] == 'rebooted'
    result = esxi_result(run)
    assert result['outcome'] == 'succeeded' and result['reported'] is False and result['status'] == 'complete'
    assert result['ended_by'] == 'power_off' and float(result['rebooted_after']) > 0  # the power polling saw the reboot
    assert statuses(lab, result['job_id']) == ['queued', 'provisioning', 'complete']
    assert 'no report from the installed host within 4 s' in role_task(run, 'Say that the installed host did not report').result['msg']
    assert lab.inserted(0) == {} and lab.system(0)['PowerState'] == 'On'


def test_report_off_ends_on_the_reboot_with_an_iso_prepared_by_hand(provisioning_lab_factory, collection_playbook, tmp_path):
    """provision_installer_iso_url (an ISO that already starts its kickstart) and provision_firstboot_report=false: the
    flow of before - no remaster, no %firstboot, the power-off ends the job."""
    lab = provisioning_lab_factory(nodes=1)
    prepared = build_installer_iso(tmp_path / 'prepared', lab.receiver.media_dir / 'esxi-prepared.iso',
                                   boot_cfg_bios=b'kernel=/b.b00\nkernelopt=cdromBoot ks=cdrom:/KS.CFG\n',
                                   boot_cfg_uefi=b'kernel=/b.b00\nkernelopt=cdromBoot ks=cdrom:/KS.CFG\n')
    url = '%s/media/%s' % (lab.receiver.url, prepared.path.name)
    inventory = lab.write_inventory(provision_installer_iso_url=url, provision_ks_cfg=KS_CFG, provision_firstboot_report=False)
    node = lab.simulate(0, kind='esxi', step_seconds=10, off_seconds=5)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120)).assert_ok()
    report = node.result()
    result = esxi_result(run)
    assert report['ks_cfg'] == KS_CFG and report['firstboot'] == []  # no section added, nothing ran
    assert result['boot_medium']['image'] == url and result['installer_iso'] == {} and esxi_media(lab) == []
    assert result['outcome'] == 'succeeded' and result['reported'] is False
    assert statuses(lab, result['job_id']) == ['queued', 'provisioning', 'complete']
    assert role_task(run, 'Wait for the installed host to report (the kickstart\'s last %firstboot section)').status == 'skipped'


@pytest.mark.parametrize('eject', [False, True], ids=['media-stay', 'eject-after-failure'])
def test_stock_iso_given_as_prepared_waits_at_the_boot_prompt(provisioning_lab_factory, collection_playbook, tmp_path, eject):
    """Negative control: the stock ISO inserted as it is (provision_installer_iso_url) never starts the kickstart - the
    simulated installer waits at its prompt - so nothing reboots and the job fails at the deadline, with the hint. The
    media stay inserted for debugging, as after any failed job, unless provision_eject_after_failure=true."""
    lab = provisioning_lab_factory(nodes=1)
    stock = build_installer_iso(tmp_path / 'stock', lab.receiver.media_dir / 'stock.iso')
    inventory = lab.write_inventory(provision_installer_iso_url='%s/media/stock.iso' % lab.receiver.url, provision_ks_cfg=KS_CFG,
                                    **({'provision_eject_after_failure': True} if eject else {}))
    node = lab.simulate(0, kind='esxi', step_seconds=1, off_seconds=2)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=4))
    assert run.rc == 2, run.output
    assert node.result()['outcome'] == 'waiting' and 'ks' not in node.result()['kernelopt']
    assert read_iso_file(stock.path, '/BOOT.CFG;1') == stock.files['/BOOT.CFG']
    result = esxi_result(run)
    assert result['outcome'] == 'failed' and result['failed_step'] == 'esxi-installer' and result['reported'] is False
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] == 'esxi-installer' and 'no power-off seen (last power state On)' in job['reason']
    message = role_task(run, 'Report a failed install').result['msg']
    assert 'no reboot of the installer and no report from the host seen within 4 s' in message and 'provision_esxi_installer_iso' in message
    if eject:
        assert lab.inserted(0) == {} and result['ejected'] and 'media ejected' in message
    else:
        inserted = lab.inserted(0)
        assert inserted['Cd'] == '%s/media/stock.iso' % lab.receiver.url, inserted
        assert inserted['Cd2'].endswith('-task.iso') and result['job_id'] in inserted['Cd2'], inserted
        assert result['ejected'] == [] and 'media left in for debugging' in message


def test_single_cd_bmc_gets_a_usb_kickstart_and_a_usb_installer(provisioning_lab_factory, collection_playbook, tmp_path):
    """One virtual CD: the kickstart goes on the USB slot as FAT, so the installer is remastered with ks=usb:/KS.CFG."""
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path, vmedia=ONE_CD_AND_USB)
    node = lab.simulate(0, kind='esxi', step_seconds=1, off_seconds=2)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120, provision_report_timeout=120)).assert_ok()
    report = node.result()
    result = esxi_result(run)
    assert result['task_medium']['id'] == 'Usb' and result['task_medium']['image'].endswith('/%s-task.img' % serial(0))
    assert result['installer_iso']['kernelopt'] == {'/BOOT.CFG': 'runweasel cdromBoot ks=usb:/KS.CFG',
                                                    '/EFI/BOOT/BOOT.CFG': 'runweasel cdromBoot ks=usb:/KS.CFG'}
    assert report['kernelopt']['ks'] == 'usb:/KS.CFG' and report['medium'].endswith('.img')
    assert report['firstboot'][0]['rc'] == 0
    assert result['outcome'] == 'succeeded' and result['reported'] is True


def test_stock_iso_from_a_url_is_downloaded_once_with_its_sha256(provisioning_lab_factory, collection_playbook, tmp_path):
    """A URL with its sha256: the first job downloads and remasters it; the next job (reinstall) finds the copy and
    downloads nothing. The BMC gets the receiver's copy, not the mirror's URL."""
    lab = provisioning_lab_factory(nodes=1)
    with FileServer(tmp_path / 'mirror') as mirror:
        stock = build_installer_iso(tmp_path / 'stock', tmp_path / 'mirror' / 'VMware-VMvisor-Installer-8.0U3.iso')
        digest = hashlib.sha256(stock.path.read_bytes()).hexdigest()
        inventory = lab.write_inventory(provision_installer_iso=mirror.url_for(stock.path.name), provision_installer_iso_sha256=digest,
                                        provision_ks_cfg=KS_CFG)
        lab.simulate(0, kind='esxi', step_seconds=1, off_seconds=2)
        first = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120, provision_report_timeout=120)).assert_ok()
        assert role_task(first, 'Remaster the stock installer ISO (ks= in both boot.cfg), or find the copy an earlier run made').result['downloaded']
        lab.nodes[0].result()
        lab.simulate(0, kind='esxi', step_seconds=1, off_seconds=2, after_mark=lab.bmc.mark())  # the second install
        second = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120, provision_report_timeout=120,
                                                                       provision_reinstall=True)).assert_ok()
        task = role_task(second, 'Remaster the stock installer ISO (ks= in both boot.cfg), or find the copy an earlier run made')
        assert task.result['cached'] and not task.result['downloaded'] and not task.changed
        assert [(r.method, r.path) for r in mirror.requests] == [('GET', '/' + stock.path.name)]
    assert esxi_result(first)['boot_medium']['image'].startswith(lab.receiver.url + '/media/esxi/')
    assert esxi_result(second)['reported'] and esxi_result(second)['job_id'] != esxi_result(first)['job_id']
    assert len(esxi_media(lab)) == 1


def test_check_mode_registers_nothing_writes_nothing(provisioning_lab_factory, collection_playbook, tmp_path):
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path)
    run = collection_playbook('provision_esxi', inventory, FAST, check=True).assert_ok()
    assert lab.receiver.list_jobs() == [] and lab.changing_requests() == [] and esxi_media(lab) == []
    result = esxi_result(run)
    assert result['outcome'] == 'started' and '/media/esxi/(remastered ' in result['installer_iso_url']
    assert role_task(run, 'Boot medium on the first virtual CD').changed


@pytest.mark.parametrize('kickstart, missing', [
    pytest.param(KS_CFG.replace('reboot\n', ''), 'no reboot command', id='no-reboot'),
    pytest.param(KS_CFG.replace('vmaccepteula\n', '').replace('reboot\n', '%post\nreboot\n'), 'no vmaccepteula, no reboot command',
                 id='reboot-only-in-a-script'),
])
def test_kickstart_that_would_stop_fails_before_the_bmc_is_touched(provisioning_lab_factory, collection_playbook, tmp_path, kickstart, missing):
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_ks_cfg=kickstart))
    assert run.rc == 2 and 'provision_esxi_ks_cfg has %s' % missing in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == [] and esxi_media(lab) == []


def test_missing_kickstart_fails_before_the_bmc_is_touched(provisioning_lab_factory, collection_playbook):
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_installer_iso_url=lab.maintenance_iso_url)
    run = collection_playbook('provision_esxi', inventory, FAST)
    assert run.rc == 2 and 'missing: provision_ks_cfg' in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == []


def test_both_installer_isos_is_an_error(provisioning_lab_factory, collection_playbook, tmp_path):
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_installer_iso_url=lab.maintenance_iso_url))
    assert run.rc == 2 and 'not both' in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == []


# A test-only callback plugin: when the task of role provision_esxi that waits for the report or the installer's reboot
# comes back at its deadline, it plays what happens just then. The installed host reporting: it reads the kickstart from
# the task medium the play built (as the installer reads it) and runs its %firstboot report script (the host's own
# sender), or, for a failure, signs one with the token that script holds. Or, for the controls: another run closing the
# job through the job API, or the receiver going away. Callbacks run in the controller's main process before the
# linear strategy queues the next task, so this always lands between the wait and "Mark the job failed".
LATE_REPORT_CALLBACK = '''
from __future__ import annotations

import ast
import json
import os
import re
import signal
import urllib.request
from pathlib import Path

from ansible.plugins.callback import CallbackBase
from l3metal_contract import webhook
from l3metal_lab import esxi

DOCUMENTATION = """
name: l3metal_late_esxi_report
type: aggregate
short_description: Test only - something happens to the ESXi job right after the wait's deadline
"""

WAIT_TASK = "Wait for the installed host's report or the installer's reboot (power Off), whichever shows first"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'l3metal_late_esxi_report'
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_on_ok(self, result):
        if not result._task.get_name().endswith(WAIT_TASK):
            return
        job = result._result.get('job') or {}
        record = {'ended_by': result._result.get('ended_by'), 'status_seen': job.get('status')}
        late = json.loads(os.environ['L3METAL_LATE_REPORT'])
        records = Path(os.environ['L3METAL_LATE_REPORT_FILE'])
        try:
            medium = Path(job['media_dir']) / ('%s-task.iso' % job['server_serial'])
            ks_cfg = esxi.read_iso_file(medium, '/KS.CFG;1').decode('utf-8')
            [script] = [script for _header, script in esxi.firstboot_sections(ks_cfg) if 'TOKEN = ' in script]
            constants = {name: ast.literal_eval(value) for name, value in re.findall(r'^([A-Z_]+) = (.+)$', script, re.M)}
            base_url = constants['URL'][:constants['URL'].index(webhook.WEBHOOK_PATH)]
            if late['status'] == 'receiver-gone':
                os.killpg(late['pid'], signal.SIGKILL)
                record['sent'] = None
            elif late['status'] == 'closed':
                request = urllib.request.Request('%s/api/v1/jobs/%s/status' % (base_url, constants['JOB_ID']),
                                                 data=json.dumps({'status': 'complete'}).encode(), method='POST',
                                                 headers={'Content-Type': 'application/json'})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    record['sent'] = answer.status
            elif late['status'] == 'success':
                # the installed host's first boot, as the simulated node runs it: the kickstart's own report script
                [run] = esxi.run_firstboot(ks_cfg, records.parent / 'late_firstboot')
                record['sent'] = run.rc
                record['delivered'] = 'l3metal-report: success delivered to ' in run.stderr
            else:
                sender = webhook.WebhookSender(base_url, job['server_serial'], constants['TOKEN'], job_id=constants['JOB_ID'], attempts=1)
                record['sent'] = sender.send(webhook.failed_body(late['step'], late['reason'], late['log_tail']))
        except Exception as exc:  # the test reads the record: what was not done fails it there
            record['error'] = repr(exc)
        with records.open('a', encoding='utf-8') as handle:
            handle.write(json.dumps(record) + '\\n')
'''

LATE_FAILURE = {'status': 'failed', 'step': 'firstboot:vmk0', 'reason': 'the management network did not come up',
                'log_tail': 'vmk0: no DHCP lease after 120 s'}
MARK_TASK = 'Mark the job failed, since neither a reboot nor a report came in time'


def run_with_late_report(provisioning_lab_factory, collection_playbook, tmp_path, report: dict[str, t.Any]):
    """provision_esxi for node-01 whose installed host reports ``report`` just after the wait's deadline (see
    LATE_REPORT_CALLBACK); (the lab, the run)."""
    from l3metal_lab.paths import LAB_DIR  # pylint: disable=import-outside-toplevel
    lab, inventory, _stock = esxi_lab(provisioning_lab_factory, tmp_path)
    if report['status'] == 'receiver-gone':
        report = dict(report, pid=lab.receiver.service.process.pid)
    plugins = tmp_path / 'late_report_plugins'
    plugins.mkdir()
    (plugins / 'l3metal_late_esxi_report.py').write_text(LATE_REPORT_CALLBACK)
    sent = tmp_path / 'late_report.jsonl'
    env = {'ANSIBLE_CALLBACK_PLUGINS': '%s:%s' % (LAB_DIR / 'callback_plugins', plugins),
           'ANSIBLE_CALLBACKS_ENABLED': 'l3metal_record,l3metal_late_esxi_report',
           'L3METAL_LATE_REPORT': json.dumps(report), 'L3METAL_LATE_REPORT_FILE': str(sent)}
    # no simulated installer: the power stays On and nothing reports, so the wait always reaches its deadline
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=3, provision_report_timeout=30), env=env)
    records = [json.loads(line) for line in sent.read_text().splitlines()] if sent.exists() else []
    expected: dict[str, t.Any] = {'ended_by': 'timeout', 'status_seen': 'provisioning',
                                  'sent': {'success': 0, 'receiver-gone': None}.get(report['status'], 200)}
    if report['status'] == 'success':
        expected['delivered'] = True
    # done once, after a wait that ended at its deadline with the job still provisioning
    assert records == [expected], (records, run.output)
    return lab, run


def test_success_reported_between_deadline_and_mark_is_a_success(provisioning_lab_factory, collection_playbook, tmp_path):
    """The installed host's success lands after the wait's deadline (no reboot seen, no report yet) but before the
    controller marks the job failed (issue 17's race, in the ESXi flow): the receiver refuses the mark, and the role goes
    on with the stored outcome - a reported success, cleaned up as one - instead of failing the host."""
    lab, run = run_with_late_report(provisioning_lab_factory, collection_playbook, tmp_path, {'status': 'success'})
    run.assert_ok()
    result = esxi_result(run)
    assert result['outcome'] == 'succeeded' and result['reported'] is True and result['failed_step'] is None, result
    assert result['status'] == 'complete' and result['ended_by'] == 'timeout' and result['reason'] is None
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] is None and job['reason'] is None
    assert statuses(lab, result['job_id']) == ['queued', 'provisioning', 'succeeded', 'complete']
    assert [event['source'] for event in lab.receiver.events(result['job_id']) if event.get('status') == 'succeeded'] == ['node']
    mark = role_task(run, MARK_TASK)
    assert not mark.failed and mark.result['status'] == 'succeeded', mark.result
    # the success path's cleanup: everything ejected, the installed system on
    assert len(result['ejected']) == 2 and lab.inserted(0) == {} and lab.system(0)['PowerState'] == 'On'
    # reported already: no wait for the first boot's report
    assert role_task(run, "Wait for the installed host to report (the kickstart's last %firstboot section)").status == 'skipped'
    assert not run.failed, [(task.task, task.result.get('msg')) for task in run.failed]


def test_failure_reported_between_deadline_and_mark_keeps_the_nodes_failure(provisioning_lab_factory, collection_playbook, tmp_path):
    """Control: a host that reports ``failed`` in the same window stays a failure with the host's own step and reason
    (not the controller's esxi-installer and its boot.cfg hint), cleaned up as a failure (media left in)."""
    lab, run = run_with_late_report(provisioning_lab_factory, collection_playbook, tmp_path, LATE_FAILURE)
    assert run.rc == 2, run.output
    result = esxi_result(run)
    assert result['outcome'] == 'failed' and result['failed_step'] == LATE_FAILURE['step'] and result['reported'] is False, result
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and (job['failed_step'], job['reason']) == (LATE_FAILURE['step'], LATE_FAILURE['reason'])
    assert LATE_FAILURE['log_tail'] in job['log_tail']
    assert statuses(lab, result['job_id']) == ['queued', 'provisioning', 'failed', 'complete']
    assert result['ejected'] == [] and len(lab.inserted(0)) == 2
    report = role_task(run, 'Report a failed install')
    assert report.failed and 'failed at %s;' % LATE_FAILURE['step'] in report.result['msg'], report.result
    assert 'no reboot of the installer' not in report.result['msg']
    assert [task.task for task in run.failed] == [report.task]


@pytest.mark.parametrize('late, error', [
    pytest.param({'status': 'closed'}, 'a job that is complete cannot become failed', id='closed-by-another-run'),
    pytest.param({'status': 'receiver-gone'}, 'cannot reach the webhook receiver', id='receiver-gone'),
])
def test_other_errors_of_the_late_mark_still_fail(provisioning_lab_factory, collection_playbook, tmp_path, late, error):
    """Controls: only an outcome the host reported lets the play go on. A job closed in the window (not an outcome of
    the host) or a receiver that went away fails the mark as before, and the host with it."""
    _lab, run = run_with_late_report(provisioning_lab_factory, collection_playbook, tmp_path, late)
    assert run.rc == 2, run.output
    mark = role_task(run, MARK_TASK)
    assert mark.failed and error in mark.result['msg'], mark.result
    assert role_task(run, "Report the failure on the controller's side").failed
    assert [task.task for task in run.failed][0] == mark.task
