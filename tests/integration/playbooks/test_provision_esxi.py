# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/provision_esxi.yml (role provision_esxi): installer ISO on CD 1, a kickstart-only medium on CD 2, the end
of the install seen as the power cycle of the installer's reboot, polled through the sushy-tools emulator."""

from __future__ import annotations

import base64
import typing as t

from l3metal_lab.lab import role_task, stand_in_maintenance_iso
from l3metal_lab.media import pycdlib_tree

KS_CFG = 'vmaccepteula\ninstall --firstdisk --overwritevmfs\nrootpw --iscrypted $6$salt$hash\nnetwork --bootproto=dhcp\nreboot\n'
FAST = {'provision_serial': '100%', 'provision_max_fail_percentage': 100}


def esxi_result(run, host: str = 'node-01') -> dict[str, t.Any]:
    found = [task.result['ansible_facts']['provision_esxi_result'] for task in run.tasks
             if task.host == host and 'provision_esxi_result' in (task.result.get('ansible_facts') or {})]
    assert found, run.output
    return found[-1]


def esxi_lab(factory):
    lab = factory(nodes=1)
    stand_in_maintenance_iso(lab.receiver.media_dir / 'esxi-installer.iso')
    installer = '%s/media/esxi-installer.iso' % lab.receiver.url
    return lab, lab.write_inventory(provision_installer_iso_url=installer, provision_ks_cfg=KS_CFG), installer


def test_install_ends_with_the_installers_reboot(provisioning_lab_factory, collection_playbook):
    lab, inventory, installer = esxi_lab(provisioning_lab_factory)
    node = lab.simulate(0, kind='esxi', step_seconds=2, off_seconds=5)  # installs 2 s, then is off 5 s
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120)).assert_ok()
    report = node.result()

    result = esxi_result(run)
    assert result['outcome'] == 'succeeded' and result['status'] == 'complete'
    assert result['boot_medium']['image'] == installer
    assert report['ks_cfg'] == KS_CFG  # read by the "installer" from KS.CFG of the medium the BMC downloaded
    assert set(pycdlib_tree(report['medium'], 'rr')) == {'ks.cfg'}  # no recipe.json: a kickstart-only medium
    assert float(result['rebooted_after']) > 0  # the role polled until the power went Off
    statuses = [e['status'] for e in lab.receiver.events(result['job_id']) if e['type'] == 'status']
    assert statuses == ['queued', 'provisioning', 'complete']
    recipe = lab.receiver.get_job(result['job_id'])['recipe']
    assert recipe['task_target'] == 'install-esxi.target' and base64.b64decode(recipe['ks_cfg']).decode() == KS_CFG
    assert lab.inserted(0) == {} and len(result['ejected']) == 2
    assert lab.system(0)['PowerState'] == 'On'

    # installed with this kickstart: a new run leaves the server alone
    mark = len(lab.changing_requests())
    rerun = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=120)).assert_ok()
    assert not rerun.changed and esxi_result(rerun)['outcome'] == 'unchanged' and lab.changing_requests()[mark:] == []


def test_no_reboot_in_time_fails_the_job(provisioning_lab_factory, collection_playbook):
    """Nothing reboots (no installer runs): at the deadline the job is failed at esxi-installer and cleaned up."""
    lab, inventory, _installer = esxi_lab(provisioning_lab_factory)
    run = collection_playbook('provision_esxi', inventory, dict(FAST, provision_timeout=3))
    assert run.rc == 2, run.output
    result = esxi_result(run)
    assert result['outcome'] == 'failed' and result['failed_step'] == 'esxi-installer'
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] == 'esxi-installer' and 'still On' in job['reason']
    assert lab.inserted(0) == {}
    message = role_task(run, 'Report a failed install').result['msg']
    assert 'no reboot of the installer seen within 3 s' in message and 'ks=cdrom:/KS.CFG' in message


def test_missing_kickstart_fails_before_the_bmc_is_touched(provisioning_lab_factory, collection_playbook):
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_installer_iso_url=lab.maintenance_iso_url)
    run = collection_playbook('provision_esxi', inventory, FAST)
    assert run.rc == 2 and 'missing: provision_ks_cfg' in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == []
