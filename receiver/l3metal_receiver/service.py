# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the receiver does, without HTTP: create jobs, apply signed webhooks and user transitions,
hand out per-job media, and wake up the clients waiting for a job's next event.

Reads use their own connection on the event loop (WAL readers never wait for the writer); every
write goes through the ``GroupCommitter``.

On PostgreSQL other receivers write the same jobs: a long poll is woken by this receiver's own
writes and by the others' (``LISTEN`` on ``store.NOTIFY_CHANNEL``, a thread with a connection of its
own), and re-reads at least every ``REMOTE_POLL`` seconds in case a notification was lost while
that connection was being re-established.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import os
import secrets
import shutil
import threading
import typing as t
import uuid
from pathlib import Path

from l3metal_contract import webhook
from l3metal_contract.jobs import COMPLETE, FAILED, SERIAL_PATTERN, job_recipe, recipe_digest, with_callback
from l3metal_contract.recipe import recipe_json

from .committer import GroupCommitter, StorageUnavailable, storage_reason
from .store import NOTIFY_CHANNEL, Event, Job, StoredMedium, JobMismatch, JobNotFound, NewJob, NoActiveJob, WebhookOutcome, is_postgres_url, open_store, utc_now

LOG = logging.getLogger('l3metal_receiver')

JOBS_MEDIA_DIR = 'jobs'
# PostgreSQL: the longest a long poll goes without re-reading the database (when a notification was lost)
REMOTE_POLL = 2.0


class SignatureRejected(Exception):
    """A webhook whose signature headers are missing, wrong or stale (wraps ``webhook.SignatureError``)."""


class SiteKeyForbidden(Exception):
    """A correctly signed site-key report that asks for more than a site key may do (anything but the dispatcher's failure)."""


class MediaGone(Exception):
    """A per-job media URL of a job that is complete."""


class ContentMismatch(Exception):
    """An uploaded medium whose sha256 is not the one its client sent (400)."""


class Notifier:
    """Wake the requests that wait for a job's next event (long polls)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def waiter(self, job_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        return future

    def discard(self, job_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[job_id]

    @property
    def waiting(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    def notify_all(self) -> None:
        for job_id in list(self._waiters):
            self.notify(job_id)

    def notify(self, job_id: str) -> None:
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(None)


class Listener:
    """PostgreSQL ``LISTEN``: the job ids other receivers (and this one) commit events for, handed to ``Notifier.notify``
    on the event loop.  A thread with a connection of its own; a lost connection is opened again after a second."""

    def __init__(self, url: str, notifier: Notifier, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.notifier = notifier
        self.loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name='l3metal-receiver-listener', daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, wake: t.Callable[[], None] | None = None) -> None:
        """End the thread.  ``wake`` sends a notification on the channel (the thread waits for one at most 0.5 s at a time:
        woken, the receiver stops at once instead of after up to that wait)."""
        self._stop.set()
        if wake is not None and self._thread.is_alive():
            try:
                wake()
            except Exception:  # pylint: disable=broad-exception-caught  # the server is gone: the thread sees the stop within 0.5 s
                pass
        self._thread.join(timeout=5)

    def _main(self) -> None:
        import psycopg  # pylint: disable=import-outside-toplevel
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name='l3metal-receiver-listen') as conn:
                    conn.execute('LISTEN %s' % NOTIFY_CHANNEL)
                    self.connected.set()  # a notification sent while not connected is caught by the waiters' REMOTE_POLL re-read
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if self._stop.is_set():
                                break
                            self.loop.call_soon_threadsafe(self.notifier.notify, note.payload)
            except Exception as exc:  # pylint: disable=broad-exception-caught  # the server went away: listen again
                self.connected.clear()
                if not self._stop.is_set():
                    LOG.warning('LISTEN %s: %s; listening again in 1 s (long polls re-read every %g s meanwhile)', NOTIFY_CHANNEL,
                                str(exc).strip() or type(exc).__name__, REMOTE_POLL)
                    self._stop.wait(1.0)


class JobService:
    def __init__(self, data_dir: Path, media_dir: Path, committer: GroupCommitter, public_url: str | None = None,
                 site_keys: t.Sequence[str] = (), database: str | None = None) -> None:
        self.data_dir = data_dir
        self.media_dir = media_dir
        self.committer = committer
        self.public_url = public_url.rstrip('/') if public_url else None
        self.reader = open_store(database or str(data_dir / 'receiver.sqlite3'))
        # other receivers write the same database: their writes are not seen by this process's notifier alone
        self.shared = is_postgres_url(self.reader.path)
        self.listener: Listener | None = None
        self.notifier = Notifier()
        # serial -> (job id, token) of its active job: a webhook is verified without a database read.
        # Every write goes through this object, which keeps the cache right; the writer checks again.
        self._signing: dict[str, tuple[str, str]] = {}
        # The site's node keys (--node-key-file): accepted only for the dispatcher's failure report (docs/webhooks.md).
        self.site_keys = tuple(site_keys)
        # Where media really are (symlinks resolved once): a file is served only when its resolved location lies
        # beneath the root of its route (media.open_regular_file), so a link in a group-writable job directory
        # cannot serve the database, another job's medium, or anything else.
        self.media_real = os.path.realpath(media_dir)
        self.jobs_media_real = os.path.join(self.media_real, JOBS_MEDIA_DIR)

    @property
    def database(self) -> str:
        return self.reader.path

    def start_listener(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.shared and self.listener is None:
            self.listener = Listener(self.reader.path, self.notifier, loop)
            self.listener.start()

    def close(self) -> None:
        if self.listener is not None:
            # woken with an empty job id (no job has one: nobody waits for it, here or on another receiver)
            self.listener.stop(wake=(lambda: self.reader.notify('')) if self.reader.usable() else None)
            self.listener = None
        self.reader.close()

    # ------------------------------------------------------------------------- documents

    def job_media_dir(self, job_id: str) -> Path:
        return self.media_dir / JOBS_MEDIA_DIR / job_id

    def media_url(self, job: Job) -> str:
        return '%s/media/%s/%s/%s/' % (job.public_url, JOBS_MEDIA_DIR, job.job_id, job.media_key)

    def callback(self, job: Job) -> dict[str, str]:
        return {'url': job.public_url, 'job_id': job.job_id, 'token': job.token, 'serial': job.server_serial}

    def job_document(self, job: Job, detail: bool = False) -> dict[str, t.Any]:
        doc: dict[str, t.Any] = {
            'job_id': job.job_id,
            'status': job.status,
            'failed_step': job.failed_step,
            'server_serial': job.server_serial,
            'created_at': job.created_at,
            'last_update': job.last_update,
            'reason': job.reason,
            'recipe_sha256': job.recipe_sha256,
            'media_url': self.media_url(job) if job.active else None,
            'media_dir': str(self.job_media_dir(job.job_id)) if job.active else None,
        }
        if detail:
            doc['log_tail'] = job.log_tail
            last = self.reader.last_progress(job.job_id)
            doc['last_progress'] = last.as_dict() if last else None
            doc['recipe'] = job.recipe
        return doc

    def secret_document(self, job: Job) -> dict[str, t.Any]:
        """The job with its token, callback block and the recipe for the task medium: only answered
        when the token is made (creation, reissue), never by a read."""
        doc = self.job_document(job, detail=True)
        callback = self.callback(job)
        doc.update(token=job.token, callback=callback, recipe=with_callback(job.recipe, callback))
        return doc

    # ------------------------------------------------------------------------- reads

    def get(self, job_id: str) -> Job:
        job = self.reader.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list_jobs(self, statuses: t.Sequence[str], serial: str | None, limit: int, offset: int) -> list[Job]:
        return self.reader.list_jobs(statuses, serial, limit, offset)

    async def events(self, job_id: str, after: int, wait: float, limit: int = 1000) -> tuple[Job, list[Event]]:
        """The job and its events after ``after``; with ``wait``, hold the answer until there is one."""
        job = self.get(job_id)
        events = self.reader.events(job_id, after, limit)
        if events or wait <= 0 or job.status == COMPLETE:
            return job, events
        future = self.notifier.waiter(job_id)
        try:
            # re-read after registering: an event committed in between is not missed
            events = self.reader.events(job_id, after, limit)
            deadline = asyncio.get_running_loop().time() + wait
            while not events:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    # shared database: wake up every REMOTE_POLL seconds to re-read (a notification lost while LISTEN reconnected)
                    await asyncio.wait_for(asyncio.shield(future), timeout=min(left, REMOTE_POLL) if self.shared else left)
                except asyncio.TimeoutError:
                    pass
                events = self.reader.events(job_id, after, limit)
                if future.done() or not self.shared:
                    break  # woken (an event, or the receiver stopping) or the wait is over: answer
        finally:
            self.notifier.discard(job_id, future)
        return self.get(job_id), events

    def signing_key(self, serial: str) -> tuple[str, str]:
        key = self._signing.get(serial)
        if key is None:
            key = self.reader.signing_key(serial) if SERIAL_PATTERN.fullmatch(serial) else None
            if key is None:
                raise NoActiveJob(serial)
            self._signing[serial] = key
        return key

    def _signing_key_changed(self, serial: str, used: tuple[str, str]) -> bool:
        """Re-read the serial's key after a refusal (the cache is kept by this process's own writes; this guards
        against anything else writing the database); True when it differs."""
        fresh = self.reader.signing_key(serial)
        if fresh is None:
            self._signing.pop(serial, None)
            return False
        self._signing[serial] = fresh
        return fresh != used

    # ------------------------------------------------------------------------- writes

    async def create(self, serial: str, recipe_source: t.Any, attached: t.Sequence[str], public_url: str) -> Job:
        loop = asyncio.get_running_loop()
        # a recipe may be megabytes of base64: validate it off the event loop
        recipe = await loop.run_in_executor(None, job_recipe, recipe_source, attached)
        new = NewJob(job_id=str(uuid.uuid4()), server_serial=serial, recipe_json=recipe_json(recipe), recipe_sha256=recipe_digest(recipe),
                     token=secrets.token_urlsafe(32), media_key=secrets.token_urlsafe(24), public_url=(self.public_url or public_url).rstrip('/'))
        media = self.job_media_dir(new.job_id)
        try:
            await loop.run_in_executor(None, _make_job_media_dir, media)
        except OSError as exc:
            shutil.rmtree(media, ignore_errors=True)
            reason = storage_reason(exc)
            if reason is None:
                raise
            raise StorageUnavailable(reason, 'media directory %s' % self.media_dir) from None
        try:
            job = await self.committer.run(lambda store: store.create_job(new, utc_now()))
        except BaseException:
            shutil.rmtree(media, ignore_errors=True)
            raise
        self._signing[serial] = (job.job_id, job.token)
        LOG.info('job %s created for serial %s (%s)', job.job_id, serial, job.recipe.get('task_target'))
        self.notifier.notify(job.job_id)
        return job

    async def webhook(self, serial: str, headers: t.Mapping[str, str], body: bytes) -> WebhookOutcome:
        try:
            site = webhook.key_id(headers) == webhook.SITE_KEY_ID
        except webhook.SignatureError as exc:
            raise SignatureRejected(str(exc)) from None
        site_report = self._check_site_report(serial, headers, body) if site else None
        for attempt in (1, 2):
            key = self.signing_key(serial)
            try:
                if site_report is not None:
                    return await self._record(serial, key, site_report[0], site_report[1], 'site')
                delivery_id, _stamp = webhook.verify(key[1], body, headers)
                return await self._record(serial, key, delivery_id, webhook.parse_body(body), 'node')
            except webhook.SignatureError as exc:
                if attempt == 1 and self._signing_key_changed(serial, key):
                    continue
                raise SignatureRejected(str(exc)) from None
            except NoActiveJob:
                self._signing.pop(serial, None)
                raise
            except JobMismatch:
                if attempt == 1 and self._signing_key_changed(serial, key):
                    continue
                raise
        raise NoActiveJob(serial)  # pragma: no cover - the second attempt returns or raises

    async def _record(self, serial: str, key: tuple[str, str], delivery_id: str, parsed: dict[str, t.Any], source: str) -> WebhookOutcome:
        job_id, token = key
        outcome = await self.committer.run(lambda store: store.apply_webhook(serial, job_id, token, delivery_id, parsed, utc_now(), source))
        if outcome.status != outcome.previous_status:
            LOG.info('job %s (serial %s): %s -> %s%s%s', job_id, serial, outcome.previous_status, outcome.status,
                     ' at %s' % outcome.failed_step if outcome.status == FAILED else '', ' (site key)' if source == 'site' else '')
        self.notifier.notify(job_id)
        return outcome

    def _check_site_report(self, serial: str, headers: t.Mapping[str, str], body: bytes) -> tuple[str, dict[str, t.Any]]:
        """(delivery id, body) of a report signed with the site node key, which may only be ``failed`` at the dispatcher.

        Checked before the serial's active job is looked up: signature (401), then what is reported (403).
        """
        if not self.site_keys:
            raise SignatureRejected('this receiver accepts no site-key reports (start it with --node-key-file)')
        if not SERIAL_PATTERN.fullmatch(serial):
            raise NoActiveJob(serial)
        error = 'signature does not match'
        for site_key in self.site_keys:
            try:
                delivery_id, _stamp = webhook.verify(webhook.site_signing_key(site_key, serial), body, headers)
                break
            except webhook.SignatureError as exc:
                error = str(exc)
        else:
            raise SignatureRejected('site key: %s' % error.replace('wrong token', 'wrong site node key'))
        parsed = webhook.parse_body(body)
        if not webhook.site_key_allows(parsed):
            raise SiteKeyForbidden('a site-key report may only be status failed with failed_step %s (got status %s%s); '
                                   'everything else needs the job\'s token'
                                   % (webhook.SITE_KEY_STEP, parsed['status'], ' at %s' % parsed.get('failed_step') if parsed.get('failed_step') else ''))
        return delivery_id, parsed

    async def transition(self, job_id: str, wanted: str, failed_step: str | None = None, reason: str | None = None) -> tuple[Job, bool]:
        job, changed = await self.committer.run(lambda store: store.transition(job_id, wanted, utc_now(), failed_step, reason))
        if changed:
            if job.status == COMPLETE:
                self._signing.pop(job.server_serial, None)
            LOG.info('job %s (serial %s): now %s (by user)', job.job_id, job.server_serial, job.status)
            self.notifier.notify(job.job_id)
            if job.status == COMPLETE:
                await asyncio.get_running_loop().run_in_executor(None, _remove_job_media_dir, self.job_media_dir(job.job_id))
        return job, changed

    async def reissue_token(self, job_id: str) -> Job:
        token = secrets.token_urlsafe(32)
        job = await self.committer.run(lambda store: store.reissue_token(job_id, token, utc_now()))
        self._signing[job.server_serial] = (job.job_id, job.token)
        LOG.info('job %s (serial %s): token reissued', job.job_id, job.server_serial)
        return job

    # ------------------------------------------------------------------------- media

    def remove_stale_job_media(self) -> int:
        """Remove the per-job media directories of jobs that are not active; return how many.  Run at start, before
        anything is served: a kill -9 between making a job's directory and committing the job, or between committing
        ``complete`` and removing the directory, leaves one behind (a complete job's task medium, its token inside)."""
        jobs_dir = self.media_dir / JOBS_MEDIA_DIR
        try:
            names = os.listdir(jobs_dir)
        except FileNotFoundError:
            return 0
        active = self.reader.active_job_ids()
        removed = 0
        for name in sorted(set(names) - active):
            path = jobs_dir / name
            if name.startswith('.') or path.is_symlink() or not path.is_dir():
                continue  # the receiver makes directories named by job ids only
            _remove_job_media_dir(path)
            removed += 1
        if removed:
            LOG.info('removed %d per-job media director%s of jobs that are not active (left by an unclean stop)', removed,
                     'y' if removed == 1 else 'ies')
        return removed

    async def put_medium(self, job_id: str, name: str, content: bytes, expected_sha256: str | None) -> tuple[Job, StoredMedium, bool]:
        """Store an uploaded task medium (``ContentMismatch`` when ``expected_sha256`` is not its digest); returns the job, the
        stored medium and whether it was written now (False: the same content was stored already)."""
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(None, lambda: hashlib.sha256(content).hexdigest())
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise ContentMismatch('X-Content-SHA256: the body\'s sha256 is %s, not %s (the upload was changed or cut short); nothing was stored'
                                  % (digest, expected_sha256.lower()))
        stored, written = await self.committer.run(lambda store: store.put_medium(job_id, name, digest, content, utc_now()))
        job = self.get(job_id)
        if written:
            LOG.info('job %s (serial %s): task medium %s uploaded (%d bytes, sha256 %s)', job_id, job.server_serial, name, stored.size, digest)
        return job, stored, written

    def media(self, job_id: str) -> tuple[Job, list[tuple[str, StoredMedium]]]:
        """A job and the task media uploaded for it (``JobNotFound`` for an unknown job; a complete job has none)."""
        job = self.get(job_id)
        return job, self.reader.media(job_id)

    async def materialize_medium(self, job_id: str, name: str) -> bool:
        """Write an uploaded medium of ``job_id`` from the database into this receiver's job media directory (so it is served
        exactly as a file placed there); False when none of that name is stored.  The file's mtime is the upload time, so
        every receiver answers the same ETag and Last-Modified."""
        stored = self.reader.medium(job_id, name)
        if stored is None:
            return False
        content = self.reader.medium_content(job_id, name)
        if content is None:
            return False
        await asyncio.get_running_loop().run_in_executor(None, _write_medium, self.job_media_dir(job_id), name, content, stored.created_at)
        return True

    def job_media_dir_for(self, job_id: str, media_key: str) -> str:
        """The resolved directory behind a per-job media URL; ``JobNotFound`` for a wrong id or key, ``MediaGone`` once complete."""
        job = self.reader.get_job(job_id)
        if job is None or not secrets.compare_digest(job.media_key.encode('utf-8', 'replace'), media_key.encode('utf-8', 'replace')):
            raise JobNotFound(job_id)
        if job.status == COMPLETE:
            raise MediaGone('job %s is complete: its media are no longer served' % job_id)
        return os.path.join(self.jobs_media_real, job.job_id)


def _make_job_media_dir(path: Path) -> None:
    # setgid + group-writable: a playbook running as a member of the receiver's group may place the task medium
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o2770)


def _write_medium(directory: Path, name: str, content: bytes, created_at: str) -> None:
    """``content`` as ``directory/name``, whole or not at all (a hidden temporary file, never served, renamed into place)."""
    if not directory.is_dir():
        _make_job_media_dir(directory)
    when = datetime.datetime.strptime(created_at, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc)
    stamp = int(when.timestamp()) * 10 ** 9 + when.microsecond * 1000
    temporary = directory / ('.upload-%s-%s' % (secrets.token_hex(6), name))
    try:
        with open(temporary, 'xb') as handle:
            handle.write(content)
        os.chmod(temporary, 0o640)
        os.utime(temporary, ns=(stamp, stamp))
        os.replace(temporary, directory / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _remove_job_media_dir(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        LOG.warning('cannot remove the media of a complete job, %s: %s', path, exc)
