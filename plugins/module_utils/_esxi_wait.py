# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Wait for an ESXi install to end: the installed host's report, or the installer's reboot seen as power Off.

Both signals are watched at once because either may be missing: a host that cannot reach the receiver never
reports, and many BMCs show no ``Off`` during a warm reboot (the power state stays ``On``).  Waiting for one
and then the other would leave the second case at its deadline although the report had come.

Each round long-polls the receiver's job events for ``interval`` seconds (a report ends the poll at once) and
then reads the power state once, so an ``Off`` that lasts longer than one round is seen.
"""

from __future__ import annotations

import time
import typing as t

from ._receiver import ReceiverClient, ReceiverError

REPORTED = ('succeeded', 'failed')
MAX_POWER_ERRORS = 5


class InstallWait(t.NamedTuple):
    ended_by: str                  # report, power_off, timeout or closed (the job was completed by someone else)
    job: dict[str, t.Any]
    power_state: str | None
    power_off_after: float | None  # seconds from the start until the Off was seen
    elapsed: float
    power_errors: list[str]        # BMC errors that were retried
    events: list[dict[str, t.Any]]  # the job's events seen while waiting, oldest first


def wait_for_install(receiver: ReceiverClient, job_id: str, timeout: float, read_power: t.Callable[[], str | None] | None,
                     interval: float = 2.0, clock: t.Callable[[], float] = time.monotonic,
                     on_event: t.Callable[[dict[str, t.Any]], None] | None = None) -> InstallWait:
    """Until the job reports (``succeeded``/``failed``), ``read_power()`` says ``Off``, or ``timeout`` seconds pass.

    ``read_power`` is None to watch the report only.  A BMC error is retried the next round; ``MAX_POWER_ERRORS``
    in a row raise the last one.  ``on_event`` sees each of the job's events once.
    """
    start = clock()
    after = 0
    events: list[dict[str, t.Any]] = []
    power: str | None = None
    errors: list[str] = []
    in_a_row = 0

    def done(ended_by: str, job: dict[str, t.Any], off_after: float | None = None) -> InstallWait:
        return InstallWait(ended_by, job, power, off_after, clock() - start, errors, events)

    while True:
        remaining = timeout - (clock() - start)
        doc = receiver.events(job_id, after, wait=max(0.0, min(interval, remaining)))
        for event in doc.get('events') or []:
            events.append(event)
            if on_event is not None:
                on_event(event)
        after = int(doc.get('last_seq') or after)
        job = doc.get('job') or {}
        if job.get('status') in REPORTED:
            return done('report', job)
        if job.get('status') not in ('queued', 'provisioning'):
            return done('closed', job)
        if read_power is not None:
            try:
                power = read_power()
                in_a_row = 0
            except Exception as exc:  # pylint: disable=broad-exception-caught  # RedfishError and connection errors alike
                in_a_row += 1
                errors.append(str(exc))
                if in_a_row >= MAX_POWER_ERRORS:
                    raise
            if power == 'Off':
                return done('power_off', job, round(clock() - start, 1))
        if clock() - start >= timeout:
            return done('timeout', job)


__all__ = ['InstallWait', 'ReceiverError', 'wait_for_install']
