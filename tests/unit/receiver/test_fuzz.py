# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fuzzing every endpoint of the in-process receiver (issue 15): random bodies, headers, paths, query strings,
raw bytes, and webhooks signed correctly with random field contents (the cases: ``l3metal_lab.receiver_fuzz``).

After every case (``receiver_fuzz.check``): never a 5xx, nothing stored changed by a 4xx or by a read, and
the store's invariants (one active job per serial, each job's status its last status event reached
through allowed transitions, at most one outcome per job, unique delivery ids, media directories exactly
for the active jobs).  The stateful test drives whole job lives with hostile input mixed in.
Every test runs on both stores (``shared_inprocess``: SQLite, and a database of its own on the session's PostgreSQL
server); on PostgreSQL with a share of the examples (``FUZZ_PG_SHARE``, default 0.15: each case costs more round trips
there, and what differs between the stores is what is stored, which a few hundred cases reach; bench/receiver_soak.py
runs long).  ``FUZZ_SCALE`` multiplies the example counts, ``FUZZ_SHRINK=1`` shrinks a failing case;
bench/receiver_soak.py runs the same for minutes, and against the real process.
"""

from __future__ import annotations

import os
import typing as t

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test
from yarl import URL

from l3metal_lab import receiver_fuzz as fz
from l3metal_lab.receiver_inprocess import InProcess

SCALE = float(os.environ.get('FUZZ_SCALE', '1'))
PG_SHARE = float(os.environ.get('FUZZ_PG_SHARE', '0.15'))
# Shrinking a failing case of a stateful app takes minutes; the failing example is printed either way.
PHASES = tuple(Phase) if os.environ.get('FUZZ_SHRINK') == '1' else (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
TALLY = fz.Tally()


def examples_on(h: InProcess, examples: int, least: int = 1) -> int:
    """The example count for the harness's store: ``examples`` times the scale, on PostgreSQL its share (at least ``least``)."""
    return max(least, int(examples * SCALE * (PG_SHARE if h.backend == 'postgresql' else 1)))


def fuzz_settings(examples: int, **extra: t.Any) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True, phases=PHASES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large], **extra)


@pytest.fixture(scope='module', autouse=True)
def report_tally() -> t.Iterator[None]:
    yield
    print('\nfuzz cases: %d (%s)' % (TALLY.cases, TALLY.summary()))  # with -s; under xdist, per worker


@pytest.fixture(autouse=True)
def every_job_checked(shared_inprocess: InProcess) -> t.Iterator[None]:
    """After each fuzz test, the invariants once more over every job (after each case they cover the jobs it touched)."""
    yield
    shared_inprocess.invariants(full=True)


@pytest.mark.parametrize('name', sorted(fz.CASES))
def test_fuzz(shared_inprocess, name):
    case, strategies, examples = fz.CASES[name]
    examples = examples_on(shared_inprocess, examples)
    before = TALLY.cases

    @fuzz_settings(examples)
    @given(**strategies)
    def run(**drawn: t.Any) -> None:
        case(shared_inprocess, TALLY, **drawn)

    run()
    # the count the suite promises (docs/receiver.md): a silent drop to a handful of examples fails here
    assert TALLY.cases - before >= examples, (name, TALLY.cases - before)


# any_endpoint's inputs that once made aiohttp's test client raise ValueError before sending (it read ``//a:b`` as an
# authority with a port that is no number; l3metal_lab.receiver_fuzz.any_target): each a request the receiver answers
AUTHORITY_LIKE_PATHS = [['', 'a:b'], ['', 'G!:IUjtI)4)8'], ['', ':g', 'jobs', '..'], ['', 'x:99999', 'y']]


@pytest.mark.parametrize('path', AUTHORITY_LIKE_PATHS)
def test_fuzz_any_endpoint_authority_like_paths(shared_inprocess, path):
    before = TALLY.cases
    fz.case_any_endpoint(shared_inprocess, TALLY, method='GET', path=path, prefix='', query='limit=0', body=None, content_type=None, auth=True)
    assert TALLY.cases == before + 1
    answer = shared_inprocess.run(shared_inprocess.request('GET', fz.any_target('', path, '')))
    assert answer.status == 404 and answer.json['detail'] == 'not found: ' + URL('http://h' + fz.any_target('', path, '')).path, answer


def test_fuzz_job_lives(shared_inprocess):
    before = TALLY.cases
    counted = dict(TALLY.counts)
    fz.JobLives.harness = shared_inprocess
    fz.JobLives.tally = TALLY
    examples = examples_on(shared_inprocess, 40, least=12)
    run_state_machine_as_test(fz.JobLives, settings=fuzz_settings(examples, stateful_step_count=40))
    assert TALLY.cases - before >= examples * 10, TALLY.cases - before  # steps end early when a machine has no job yet
    statuses = {status for (kind, status), count in TALLY.counts.items() if kind == 'life' and count > counted.get((kind, status), 0)}
    assert {200, 202, 400, 409} <= statuses, statuses
