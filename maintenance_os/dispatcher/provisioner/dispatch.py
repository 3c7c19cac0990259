# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``provisioner run``: task medium -> checked recipe -> run directory -> provisioning target.

Every pre-flight failure is reported with a signed ``failed`` webhook whose ``failed_step`` is
``provision-dispatcher.service``: with the recipe's per-job callback once it is known, before that
(no medium, a recipe.json that does not parse, no callback block) through the site fallback channel
(``site.py``: the receiver and node key baked into the maintenance image).  Without either, the
failure is logged to the console and the journal only, and the controller's job timeout applies.
"""

from __future__ import annotations

import json
import sys
import traceback
import typing as t

from l3metal_contract import medium as medium_files
from l3metal_contract import recipe_schema, webhook
from l3metal_contract.recipe import RecipeError, check_recipe, decode_payload, load_recipe, normalize_recipe

from . import callback as cb
from . import medium as media
from . import runfiles, site, targets
from .errors import ConfigError, PreflightError

DISPATCHER_UNIT = 'provision-dispatcher.service'


class Options(t.NamedTuple):
    medium: str | None
    run_dir: str
    dry_run: bool = False
    label: str = media.DEFAULT_LABEL
    default_device: str = media.DEFAULT_DEVICE
    reader: str = 'auto'
    wait: float = 90.0
    unit_dirs: t.Sequence[str] = ()
    attempts: int = 8
    timeout: float = 10.0
    serial_files: t.Sequence[str] = cb.DMI_SERIAL_FILES
    cmdline_file: str = site.CMDLINE_FILE


class MediumContent(t.NamedTuple):
    source: str
    recipe: bytes
    schema: bytes | None
    payloads: dict[str, bytes]
    meta_data: bytes | None


def log(message: str) -> None:
    print('provisioner: ' + message, file=sys.stderr, flush=True)


def read_medium(options: Options) -> MediumContent:
    if options.medium:
        media.wait_for_path(options.medium, options.wait)
        source = options.medium
    else:
        source = media.find_medium(options.label, options.default_device, options.wait)
    log('task medium: %s' % source)
    with media.open_medium(source, options.reader) as reader:
        recipe = reader.read(medium_files.RECIPE_FILE)
        if recipe is None:
            raise media.MediumError('%s has no recipe.json: is it a task medium built by task_iso?' % source)
        payloads = {name: data for name in recipe_schema.PAYLOAD_FILES.values() if (data := reader.read(name)) is not None}
        return MediumContent(source, recipe, reader.read(medium_files.SCHEMA_FILE), payloads, reader.read(medium_files.META_DATA_FILE))


def check_schema(medium_schema: bytes | None) -> None:
    """The medium's copy of the schema must be the one this maintenance OS validates with."""
    if medium_schema is None:
        raise PreflightError('the task medium has no recipe.schema.json, so its schema version is unknown; '
                             'build the medium with the task_iso module')
    try:
        data = json.loads(medium_schema)
    except ValueError as exc:
        raise PreflightError('recipe.schema.json on the task medium is not valid JSON: %s' % exc) from None
    found = data.get('$id') if isinstance(data, dict) else None
    if found != recipe_schema.SCHEMA_ID:
        raise PreflightError('recipe schema mismatch: the task medium was built for %s, this maintenance OS validates %s; build the task '
                             'medium with a collection version that matches the maintenance ISO, or update the ISO' % (found, recipe_schema.SCHEMA_ID))
    if data != recipe_schema.RECIPE_SCHEMA:
        raise PreflightError('recipe schema mismatch: recipe.schema.json on the task medium says %s but differs from the schema of that '
                             'version in this maintenance OS; rebuild the medium and the ISO from one collection version' % found)


def merge_payloads(recipe: t.Mapping[str, t.Any], files: t.Mapping[str, bytes]) -> dict[str, bytes]:
    """Payload files from the medium, plus payloads still inside the recipe (base64); both must agree."""
    merged = dict(files)
    for key, file_name in recipe_schema.PAYLOAD_FILES.items():
        embedded = decode_payload(recipe, key)
        if embedded is None:
            continue
        if file_name in merged and merged[file_name] != embedded:
            raise PreflightError('%s is both in recipe.json and in the file %s on the task medium, with different content; give it once' % (key, file_name))
        merged[file_name] = embedded
    return merged


def prepare(options: Options, content: MediumContent, recipe_raw: dict[str, t.Any], callback: cb.Callback | None) -> str:
    """Check everything and write the run directory; return the target to start."""
    check_schema(content.schema)
    attached = [key for key, name in recipe_schema.PAYLOAD_FILES.items() if name in content.payloads]
    problems = check_recipe(recipe_raw, attached=attached)
    if problems:
        raise PreflightError(RecipeError(problems).summary())
    recipe = normalize_recipe(recipe_raw)
    payloads = merge_payloads(recipe, content.payloads)
    for key in recipe_schema.PAYLOAD_FILES:
        recipe.pop(key, None)
    target = str(recipe['task_target'])
    unit_dirs = options.unit_dirs or targets.default_unit_dirs()
    targets.check_target(target, unit_dirs)
    settings = callback._asdict() if callback else None
    if settings is not None:
        settings.pop('serial')
        if not settings['ca_file']:
            settings.pop('ca_file')
    written = runfiles.write_run_dir(options.run_dir, recipe, payloads, settings, callback.serial if callback else None, content.meta_data)
    log('wrote %s to %s' % (', '.join(written), options.run_dir))
    return target


def _outcome(what: str, status: int) -> str:
    if status == 409:  # the sender returns 409 only for duplicate_delivery: an earlier attempt of this delivery id is stored
        return '%s already delivered (HTTP 409: the receiver holds this delivery id)' % what
    return '%s delivered (HTTP %d)' % (what, status)


def report_failure(callback: cb.Callback | None, reason: str, options: Options, recipe: t.Any = None) -> None:
    body = webhook.failed_body(DISPATCHER_UNIT, reason)
    try:
        if callback is not None:
            status = cb.sender(callback, attempts=options.attempts, timeout=options.timeout).send(body)
            log(_outcome('failed webhook', status))
            return
        try:
            fallback = site.channel(options.serial_files, recipe, cmdline_path=options.cmdline_file)
        except ConfigError as exc:
            log('cannot send the failed webhook: no usable per-job callback settings (url, job_id, token, serial) were read, '
                'and the site fallback cannot be used: %s' % exc)
            return
        # A stale medium (another job of this serial) names its job: the receiver then refuses to fail the active one.
        job_id = cb.recipe_job_id(recipe)
        status = site.sender(fallback, attempts=options.attempts, timeout=options.timeout).send(dict(body, **({'job_id': job_id} if job_id else {})))
        log(_outcome('failed webhook through the site fallback to %s for serial %s' % (fallback.url, fallback.serial), status))
    except (webhook.WebhookDeliveryError, ValueError) as exc:
        log('failed webhook not delivered: %s' % exc)


def report_progress(callback: cb.Callback | None, options: Options) -> None:
    if callback is None:
        return
    try:
        cb.sender(callback, attempts=min(options.attempts, 3), timeout=options.timeout).send(webhook.progress_body(DISPATCHER_UNIT, 'done'))
    except (webhook.WebhookDeliveryError, ValueError) as exc:
        log('progress webhook not delivered (provisioning goes on): %s' % exc)


def run(options: Options) -> int:
    callback: cb.Callback | None = None
    recipe_raw: t.Any = None
    try:
        content = read_medium(options)
        try:
            recipe_raw = load_recipe(content.recipe)
        except RecipeError as exc:
            raise PreflightError('recipe.json on %s: %s' % (content.source, exc.summary())) from None
        callback = cb.from_recipe(recipe_raw, options.serial_files)
        target = prepare(options, content, recipe_raw, callback)
        if options.dry_run:
            print('would start %s' % target, flush=True)
            return 0
        targets.start_target(target)
        log('started %s' % target)
        report_progress(callback, options)
        return 0
    except PreflightError as exc:
        log('pre-flight failure: %s' % exc)
        report_failure(callback, str(exc), options, recipe_raw)
        return 1
    except Exception as exc:  # pylint: disable=broad-exception-caught  # an unexpected bug must still be reported
        traceback.print_exc()
        reason = 'internal error in the dispatcher: %s: %s' % (type(exc).__name__, exc)
        log(reason)
        report_failure(callback, reason, options, recipe_raw)
        return 1
