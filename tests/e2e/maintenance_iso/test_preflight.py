# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real boot of the maintenance ISO with a task medium whose recipe breaks the schema in one field: the dispatcher's
pre-flight refuses it before any step starts, and its failure, signed with the job's token from the medium's callback
block, reaches the real receiver naming that field.  (A medium without a readable callback block goes through the
site channel instead: the site node key and the receiver URL on the kernel command line; tests/integration covers it.)

No playbook can produce such a medium (task_iso validates the recipe), so this boot belongs to this suite.
"""

from __future__ import annotations

import json
import time

import pytest

from l3metal_lab.provisioner import NodeJob, build_medium, linux_recipe
from l3metal_lab.qemu import Vm

pytestmark = pytest.mark.timeout(1800)
BAD_SIZE = 'lots'


def test_an_invalid_recipe_fails_the_job_at_the_dispatcher_naming_the_field(lab_iso, receiver, artifacts, accel):
    vm = None
    try:
        job = NodeJob(receiver, linux_recipe(target_disk='/dev/vda'))
        recipe = job.recipe()
        recipe['partition_layout'][0]['size'] = BAD_SIZE
        medium = build_medium(artifacts / 'task.iso', recipe, 'iso', validate=False)
        vm = Vm(artifacts / 'vm', firmware='bios', serial=job.serial, live_iso=lab_iso.path, task_iso=medium, disk_size='1G',
                accel=accel).start()
        deadline = time.monotonic() + 900
        state = job.state()
        while state['status'] not in ('failed', 'succeeded') and time.monotonic() < deadline and vm.running:
            time.sleep(2)
            state = job.state()
        seconds = vm.elapsed()
        events = receiver.events(job.job_id)
        (artifacts / 'job.json').write_text(json.dumps({'job': state, 'events': events, 'seconds': seconds}, indent=2))
        assert state['status'] == 'failed', 'job %s after %.0f s (VM running: %s); last 50 console lines:\n%s' % (
            state['status'], seconds, vm.running, vm.tail(50))
        assert state['failed_step'] == 'provision-dispatcher.service'
        reason = state['reason']
        assert reason.startswith("recipe is invalid (1 problem): partition_layout[0].size: '%s' does not match the expected format"
                                 % BAD_SIZE), reason
        failed = [event for event in events if event.get('status') == 'failed']
        assert [event['source'] for event in failed] == ['node']        # signed with the job's token: the receiver checked it
        assert not [event for event in events if event.get('type') == 'progress' and event.get('state') == 'started'], events
        vm.wait_for_console('provisioner: pre-flight failure: recipe is invalid (1 problem): partition_layout[0].size', timeout=30)
        print('pre-flight failure reported %.0f s after power-on' % seconds)
    finally:
        if vm is not None:
            vm.stop()
            (artifacts / 'console-tail.txt').write_text(vm.tail(200))
