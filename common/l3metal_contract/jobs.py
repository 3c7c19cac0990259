# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Provisioning jobs: statuses, who may move a job where, and the recipe identity of a job.

Shared by the webhook receiver (which enforces it) and by
the modules (which predict changes in check mode and compare recipes without asking the server).
Pure Python without Ansible imports.

Life of a job::

    queued --(node booted: user, or the node's first webhook)--> provisioning
    provisioning --(node webhook)--> succeeded | failed
    queued | provisioning --(user: the controller gave up, e.g. Redfish error or timeout)--> failed
    any status but complete --(user: media ejected, job closed)--> complete

``complete`` is final: the job is no longer the serial's active job, its token and per-job media
URLs stop working, and a new job may be created for the serial.
"""

from __future__ import annotations

import hashlib
import json
import typing as t

from .recipe import RecipeError, RecipeProblem, compile_pattern, validate_recipe
from .recipe_schema import PAYLOAD_FILES, RECIPE_SCHEMA

QUEUED = 'queued'
PROVISIONING = 'provisioning'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
COMPLETE = 'complete'

STATUSES = (QUEUED, PROVISIONING, SUCCEEDED, FAILED, COMPLETE)
# A serial has at most one job in one of these statuses: its active job.
ACTIVE_STATUSES = (QUEUED, PROVISIONING, SUCCEEDED, FAILED)
# What a playbook waits for: the node has reported its outcome.
OUTCOME_STATUSES = (SUCCEEDED, FAILED)

# Transitions a user (a playbook, through the authenticated API) may make.
USER_TRANSITIONS: dict[str, tuple[str, ...]] = {
    QUEUED: (PROVISIONING, FAILED, COMPLETE),
    PROVISIONING: (FAILED, COMPLETE),
    SUCCEEDED: (COMPLETE,),
    FAILED: (COMPLETE,),
    COMPLETE: (),
}
# Transitions a node's signed webhook may make.  A webhook for a queued job means the node booted
# before the playbook marked it provisioning: the job moves on rather than losing the report.
NODE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    QUEUED: (PROVISIONING, SUCCEEDED, FAILED),
    PROVISIONING: (SUCCEEDED, FAILED),
    SUCCEEDED: (),
    FAILED: (),
    COMPLETE: (),
}

# Identifiers, as in the recipe schema's callback object (the one source for their syntax), compiled with
# ECMA-262 semantics: "$" is the end of the string, so match(), fullmatch() and search() all refuse "S1\n".
_CALLBACK = RECIPE_SCHEMA['properties']['callback']['properties']
SERIAL_PATTERN = compile_pattern(_CALLBACK['serial']['pattern'])
JOB_ID_PATTERN = compile_pattern(_CALLBACK['job_id']['pattern'])
TOKEN_MIN_LENGTH = int(_CALLBACK['token']['minLength'])


class TransitionError(Exception):
    """A status change that the job's current status does not allow."""

    def __init__(self, current: str, wanted: str, by: str) -> None:
        self.current = current
        self.wanted = wanted
        self.by = by
        allowed = (USER_TRANSITIONS if by == 'user' else NODE_TRANSITIONS).get(current, ())
        hint = 'allowed from %s: %s' % (current, ', '.join(allowed)) if allowed else '%s is final for the %s' % (current, by)
        super().__init__('a job that is %s cannot become %s (%s)' % (current, wanted, hint))


def check_transition(current: str, wanted: str, by: str) -> bool:
    """True when ``by`` ('user' or 'node') may move a job from ``current`` to ``wanted``.

    Returns False when the job already has the wanted status (nothing to do); raises
    ``TransitionError`` when the move is not allowed.
    """
    if current == wanted:
        return False
    table = USER_TRANSITIONS if by == 'user' else NODE_TRANSITIONS
    if wanted not in table.get(current, ()):
        raise TransitionError(current, wanted, by)
    return True


def job_recipe(source: t.Any, attached: t.Collection[str] = ()) -> dict[str, t.Any]:
    """Validate and normalize the recipe of a new job; raise ``RecipeError`` listing every problem.

    The callback block belongs to the receiver (it holds the job's id and secret token), so a recipe
    that already carries one is refused rather than silently overwritten.
    """
    unknown = sorted(set(attached) - set(PAYLOAD_FILES))
    if unknown:
        raise RecipeError([RecipeProblem('attached', '%s: not a payload field (use %s)' % (', '.join(unknown), ', '.join(PAYLOAD_FILES)))])
    recipe = validate_recipe(source, attached)
    if 'callback' in recipe:
        raise RecipeError([RecipeProblem('callback', 'is filled in by the webhook receiver for each job; remove it from the recipe')])
    return recipe


def recipe_digest(recipe: t.Mapping[str, t.Any]) -> str:
    """SHA-256 of a normalized recipe (without its callback): equal for equivalent recipes."""
    body = {key: value for key, value in recipe.items() if key != 'callback'}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode('ascii')).hexdigest()


def with_callback(recipe: t.Mapping[str, t.Any], callback: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The recipe to put on the task medium: the job's recipe plus its callback block."""
    out = dict(recipe)
    out['callback'] = dict(callback)
    return out
