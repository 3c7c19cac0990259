# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a server's jobs in the webhook receiver say about it (module provision_job_info).

A job's *status* says where it is in its life (``queued`` ... ``complete``); its *outcome* says how it
went, which a ``complete`` job only tells through its failed step and its status events:

- ``succeeded``: the node reported success;
- ``failed``: the node or the controller reported a failure (the job has a ``failed_step``);
- ``completed``: closed by the controller after the boot without a report either way, which is how
  an install without a maintenance OS ends (ESXi: the installer's reboot is the only signal);
- ``abandoned``: closed before it was ever booted (replaced by a newer job, or given up);
- ``None``: still going (``queued`` or ``provisioning``).

The server's state is the outcome of its newest job that got anywhere (not abandoned).
"""

from __future__ import annotations

import functools
import typing as t

from ._contract.jobs import COMPLETE, FAILED, SUCCEEDED, job_recipe, recipe_digest
from ._receiver import ReceiverClient, ReceiverError, check_serial

SUCCESS_OUTCOMES = ('succeeded', 'completed')
FINISHED_OUTCOMES = ('succeeded', 'failed', 'completed')
MAX_EVENT_PAGES = 50  # the receiver answers at most 1,000 events a page; a job has a few dozen


class History(t.NamedTuple):
    jobs: list[dict[str, t.Any]]              # newest first, each with 'outcome'
    active: dict[str, t.Any] | None           # the job that is not complete, if any
    last_finished: dict[str, t.Any] | None    # newest job with a finished outcome
    recipe_sha256: str | None                 # digest of the recipe asked about
    provisioned: bool                         # last_finished ended well (and ran that recipe, when one was given)


def status_history(client: ReceiverClient, job_id: str) -> list[str]:
    """The statuses a job went through, oldest first (from its events)."""
    statuses: list[str] = []
    after = 0
    for _page in range(MAX_EVENT_PAGES):
        doc = client.events(job_id, after)
        events = doc.get('events') or []
        statuses.extend(str(event.get('status')) for event in events if event.get('type') == 'status')
        last = int(doc.get('last_seq') or after)
        if not events or last <= after:
            return statuses
        after = last
    raise ReceiverError('job %s has more events than this module reads (%d pages)' % (job_id, MAX_EVENT_PAGES))


def job_outcome(job: t.Mapping[str, t.Any], statuses: t.Callable[[], list[str]]) -> str | None:
    """How a job went; ``statuses`` is called only when the job document alone cannot tell."""
    status = job.get('status')
    if status == SUCCEEDED:
        return 'succeeded'
    if status == FAILED or job.get('failed_step'):
        return 'failed'
    if status != COMPLETE:
        return None
    seen = statuses()
    if SUCCEEDED in seen:
        return 'succeeded'
    if FAILED in seen:
        return 'failed'
    return 'completed' if 'provisioning' in seen else 'abandoned'


def server_history(client: ReceiverClient, serial: str, recipe_source: t.Any = None, limit: int = 10) -> History:
    """The newest ``limit`` jobs of ``serial`` with their outcomes, and whether its last finished job ran ``recipe_source`` well."""
    check_serial(serial)
    digest = recipe_digest(job_recipe(recipe_source)) if recipe_source is not None else None  # RecipeError before any request
    listed = client.request('GET', '/api/v1/jobs', query={'serial': serial, 'limit': limit}).get('jobs') or []
    jobs: list[dict[str, t.Any]] = []
    active = last_finished = None
    for job in listed:
        entry = dict(job, outcome=job_outcome(job, functools.partial(status_history, client, str(job['job_id']))))
        jobs.append(entry)
        if job.get('status') != COMPLETE and active is None:
            active = entry
        if last_finished is None and entry['outcome'] in FINISHED_OUTCOMES:
            last_finished = entry
    provisioned = bool(last_finished and last_finished['outcome'] in SUCCESS_OUTCOMES
                       and (digest is None or last_finished.get('recipe_sha256') == digest))
    return History(jobs, active, last_finished, digest, provisioned)


def job_with_outcome(client: ReceiverClient, job_id: str) -> dict[str, t.Any]:
    """One job (by id) with its outcome."""
    job = client.get_job(job_id)
    return dict(job, outcome=job_outcome(job, functools.partial(status_history, client, job_id)))
