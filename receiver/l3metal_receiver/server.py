# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line, app factory and process life: options, logging, TLS, listening socket, clean shutdown.

``create_app(settings)`` is the receiver as an aiohttp application: its service (database, group
commit, media) starts with the app (``cleanup_ctx``) and stops with it, so the same app runs in this
process (``serve``) and in-process under aiohttp's test client.  The process runs in the foreground
(systemd ``Type=exec``, containers, tests) and stops cleanly on SIGTERM or SIGINT: it stops accepting,
lets running requests finish, commits what is queued and closes the database.

One process on purpose: SQLite serializes writers across processes with a sleeping busy handler,
which defeats group commit (measured: two worker processes sharing the socket were slower than one).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import ssl
import sys
import typing as t
from pathlib import Path

from aiohttp import web

from l3metal_contract import webhook

from . import __version__
from .api import SERVICE_KEY, build_app
from .committer import GroupCommitter
from .service import JobService

LOG = logging.getLogger('l3metal_receiver')
TOKEN_ENV = 'L3METAL_RECEIVER_API_TOKEN'


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    media_dir: Path
    public_url: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    api_token: str | None = None
    site_keys: tuple[str, ...] = ()
    access_log: bool = False
    log_file: str | None = None
    log_level: str = 'INFO'
    pid_file: str | None = None
    backlog: int = 4096


def parse_args(argv: t.Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog='python -m l3metal_receiver',
        description='l3metal webhook receiver: job API, signed status webhooks from nodes, media for BMCs (served under /media/).')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)')
    parser.add_argument('--port', type=int, default=8080, help='TCP port (default 8080)')
    parser.add_argument('--data-dir', required=True, type=Path, help='directory for the SQLite database (created, mode 0700)')
    parser.add_argument('--media-dir', required=True, type=Path, help='directory served under /media/; per-job media go to its jobs/ subdirectory')
    parser.add_argument('--public-url', help='base URL nodes and BMCs use to reach this service (default: the URL of each job-creating request)')
    parser.add_argument('--tls-cert', help='PEM certificate (chain) file: serve HTTPS')
    parser.add_argument('--tls-key', help='PEM private key for --tls-cert')
    parser.add_argument('--api-token-file', help='file holding the token /api/v1/jobs requests must send as "Authorization: Bearer"; '
                                                 'default: environment variable %s; none: the job API is open' % TOKEN_ENV)
    parser.add_argument('--node-key-file', help='the site node key(s) baked into the maintenance image, one per line: accept a failure report '
                                                'of provision-dispatcher.service signed with it for the serial\'s active job (and nothing else); '
                                                'see docs/webhooks.md')
    parser.add_argument('--access-log', action='store_true', help='log every request')
    parser.add_argument('--log-file', help='append the log to this file instead of standard error')
    parser.add_argument('--log-level', default='INFO', choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])
    parser.add_argument('--pid-file', help='write the process id here while running')
    parser.add_argument('--backlog', type=int, default=4096, help='listen backlog (default 4096: thousands of nodes report at once)')
    parser.add_argument('--version', action='version', version='%(prog)s ' + __version__)
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error('--tls-cert and --tls-key go together')
    if args.public_url and not args.public_url.startswith(('http://', 'https://')):
        parser.error('--public-url must start with http:// or https://')
    if not 0 <= args.port <= 65535:
        parser.error('--port must be 0-65535')
    token = os.environ.get(TOKEN_ENV) or None
    if args.api_token_file:
        try:
            with open(args.api_token_file, encoding='utf-8') as handle:
                token = handle.read().strip()
        except OSError as exc:
            parser.error('--api-token-file: cannot read %s: %s' % (args.api_token_file, exc.strerror))
        if not token:
            parser.error('--api-token-file: %s is empty' % args.api_token_file)
    site_keys: list[str] = []
    if args.node_key_file:
        try:
            with open(args.node_key_file, encoding='utf-8') as handle:
                site_keys = webhook.parse_site_keys(handle.read(), '--node-key-file %s' % args.node_key_file)
        except OSError as exc:
            parser.error('--node-key-file: cannot read %s: %s' % (args.node_key_file, exc.strerror))
        except ValueError as exc:
            parser.error(str(exc))
    return Settings(host=args.host, port=args.port, data_dir=args.data_dir.absolute(), media_dir=args.media_dir.absolute(),
                    public_url=args.public_url, tls_cert=args.tls_cert, tls_key=args.tls_key, api_token=token, site_keys=tuple(site_keys),
                    access_log=args.access_log,
                    log_file=args.log_file, log_level=args.log_level, pid_file=args.pid_file, backlog=args.backlog)


def _setup_logging(settings: Settings) -> None:
    if settings.log_file:
        Path(settings.log_file).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler: logging.Handler = logging.FileHandler(settings.log_file) if settings.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


SETTINGS_KEY: web.AppKey[Settings] = web.AppKey('settings', Settings)


def create_app(settings: Settings) -> web.Application:
    """The receiver as an aiohttp application for ``settings`` (nothing is opened until the app starts)."""
    app = build_app(settings.api_token)
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(_service_context)
    app.on_shutdown.append(_release_long_polls)
    return app


async def _service_context(app: web.Application) -> t.AsyncIterator[None]:
    """Start: directories, database (created and migrated before anything reads it), writer thread.  Stop: commit
    what is queued, close the database."""
    settings = app[SETTINGS_KEY]
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    committer = GroupCommitter(str(settings.data_dir / 'receiver.sqlite3'))
    committer.start(asyncio.get_running_loop())
    service = JobService(settings.data_dir, settings.media_dir, committer, settings.public_url, settings.site_keys)
    app[SERVICE_KEY] = service
    try:
        yield
    finally:
        committer.stop()
        service.close()


async def _release_long_polls(app: web.Application) -> None:
    app[SERVICE_KEY].notifier.notify_all()


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the receiver until ``stop`` is set (or SIGTERM/SIGINT)."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=logging.getLogger('l3metal_receiver.access') if settings.access_log else None,
                           shutdown_timeout=10.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=_ssl_context(settings), backlog=settings.backlog,
                           reuse_address=True)
        await site.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if settings.pid_file:
            Path(settings.pid_file).write_text('%d\n' % os.getpid())
        LOG.info('l3metal receiver %s listening on %s (data %s, media %s%s%s)', __version__, ', '.join(site_addresses(runner)),
                 settings.data_dir, settings.media_dir, ', API token required' if settings.api_token else '',
                 ', %d site node key(s)' % len(settings.site_keys) if settings.site_keys else '')
        await stop.wait()
        LOG.info('stopping')
    finally:
        await runner.cleanup()
        if settings.pid_file:
            try:
                os.unlink(settings.pid_file)
            except OSError:
                pass


def site_addresses(runner: web.AppRunner) -> list[str]:
    out = []
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            out.append('%s:%s' % (address[0], address[1]))
    return out


def main(argv: t.Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    _setup_logging(settings)
    try:
        asyncio.run(serve(settings))
    except (OSError, RuntimeError) as exc:
        LOG.error('cannot start: %s', exc)
        return 1
    return 0
