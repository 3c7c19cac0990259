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
Several receivers (behind a load balancer) share one PostgreSQL database instead (``--database-url``).

Start-up checks every directory it needs by doing what it will do there (create, write, fsync, remove
a probe file; open the database read-write), so a read-only or full file system, a missing
permission or a damaged database ends the process with one line naming the path and the cause, and
exit status 1 (``StartupError``), instead of SQLite's "disk I/O error" and a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import os
import signal
import sqlite3
import ssl
import sys
import typing as t
from pathlib import Path

from aiohttp import web

from l3metal_contract import webhook

from . import __version__
from .api import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_MEDIUM, LIMITER_KEY, SERVICE_KEY, build_app
from .committer import GroupCommitter
from .connections import (DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_NOTSENT_LOWAT, DEFAULT_SEND_TIMEOUT, ConnectionLimiter, ListeningSite,
                          connection_limit, raise_open_file_limit)
from .logs import install_client_error_filter
from .media import FastMedia
from .service import JOBS_MEDIA_DIR, JobService
from .store import is_postgres_url, redact_url

if t.TYPE_CHECKING:  # imported when a registry is configured
    from .registry.layout import Layout

LOG = logging.getLogger('l3metal_receiver')
TOKEN_ENV = 'L3METAL_RECEIVER_API_TOKEN'
DATABASE_URL_ENV = 'L3METAL_RECEIVER_DATABASE_URL'


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    media_dir: Path
    public_url: str | None = None
    # postgresql://...: the job store on a PostgreSQL server (several receivers may share it); None: SQLite in data_dir
    database_url: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    api_token: str | None = None
    site_keys: tuple[str, ...] = ()
    access_log: bool = False
    log_file: str | None = None
    log_level: str = 'INFO'
    pid_file: str | None = None
    backlog: int = 4096
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    notsent_lowat: int = DEFAULT_NOTSENT_LOWAT  # TCP_NOTSENT_LOWAT of every connection, bytes (0: the kernel's setting)
    max_medium_bytes: int = DEFAULT_MAX_MEDIUM  # PUT /api/v1/jobs/{id}/media/{name}: the largest task medium stored in the database
    max_connections: int | None = None  # None: as many as the open-file limit allows (connections.connection_limit)
    # public media (/media/, not jobs/) answered by the connection layer (connections.ReceiverProtocol) on plain HTTP
    media_fast_path: bool = True
    # The embedded OCI registry (registry/, docs/registry.md): /v2/ only when oci_layout is set.
    oci_layout: Path | None = None
    oci_htpasswd: Path | None = None
    oci_pull_auth: bool = False
    oci_allow_delete: bool = False
    oci_default_repository: str | None = None


class StartupError(Exception):
    """The receiver cannot start: ``path`` and ``cause`` make the one line it exits with."""

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__('%s: %s' % (self.path, cause))


def _seconds(text: str) -> float:
    """An argparse type: seconds, a finite number from 0 (0: no timeout) to one day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number of seconds' % text) from None
    if not math.isfinite(value) or not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError('%r: give 0 to 86400 seconds' % text)
    return value


def _bytes(text: str) -> int:
    """An argparse type: a number of bytes, 0 to 1 GiB."""
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > 1 << 30:
        raise argparse.ArgumentTypeError('%r: give a whole number of bytes from 0 to %d' % (text, 1 << 30))
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise argparse.ArgumentTypeError('%r: give a whole number from 1' % text)
    return int(text)


def parse_args(argv: t.Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog='python -m l3metal_receiver',
        description='l3metal webhook receiver: job API, signed status webhooks from nodes, media for BMCs (served under /media/).')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)')
    parser.add_argument('--port', type=int, default=8080, help='TCP port (default 8080)')
    parser.add_argument('--data-dir', required=True, type=Path, help='directory for the SQLite database (created, mode 0700)')
    parser.add_argument('--media-dir', required=True, type=Path, help='directory served under /media/; per-job media go to its jobs/ subdirectory')
    parser.add_argument('--database-url', help='postgresql://user@host:port/database (libpq URL; a password is better in ~/.pgpass or '
                                               'PGPASSWORD): keep the jobs on a PostgreSQL server that several receivers may share, '
                                               'e.g. behind a load balancer (docs/receiver.md); default: SQLite in --data-dir. '
                                               'Also environment variable %s' % DATABASE_URL_ENV)
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
    parser.add_argument('--backlog', type=int, default=4096, help='listen backlog (default 4096: thousands of nodes report at once; '
                                                                  'connections beyond --max-connections wait there)')
    parser.add_argument('--header-timeout', type=_seconds, default=DEFAULT_HEADER_TIMEOUT,
                        help='seconds from the first byte of a request to the end of its headers, and for a TLS handshake; '
                             'then the connection is closed (default %(default)g; 0: none)')
    parser.add_argument('--body-timeout', type=_seconds, default=DEFAULT_BODY_TIMEOUT,
                        help='longest pause while a request body arrives; then 408 and the connection is closed (default %(default)g; 0: none)')
    parser.add_argument('--idle-timeout', type=_seconds, default=DEFAULT_IDLE_TIMEOUT,
                        help='seconds a connection may wait for its next request (keep-alive) (default %(default)g; 0: none)')
    parser.add_argument('--send-timeout', type=_seconds, default=DEFAULT_SEND_TIMEOUT,
                        help='seconds a client may take no data of a response (TCP_USER_TIMEOUT) before it is disconnected '
                             '(default %(default)g; 0: the kernel\'s default)')
    parser.add_argument('--notsent-lowat', type=_bytes, default=DEFAULT_NOTSENT_LOWAT, metavar='BYTES',
                        help='TCP_NOTSENT_LOWAT of every connection: at most about this many bytes of a response wait unsent in '
                             'the kernel, the window is not limited by it (default %(default)d = 32 KiB; 0: the kernel\'s '
                             'net.ipv4.tcp_notsent_lowat; docs/receiver.md)')
    parser.add_argument('--max-medium-bytes', type=_positive_int, default=DEFAULT_MAX_MEDIUM,
                        help='largest task medium accepted by PUT /api/v1/jobs/{id}/media/{name}, kept in the database '
                        '(default %d = 16 MiB; large media are served by URL, docs/receiver.md)' % DEFAULT_MAX_MEDIUM)
    parser.add_argument('--max-connections', type=_positive_int,
                        help='open connections at most; at the limit idle keep-alive connections are closed first, then new ones wait in '
                             'the listen backlog (default: as many as the open-file limit allows, (limit - 64) / 2)')
    parser.add_argument('--no-media-fast-path', dest='media_fast_path', action='store_false',
                        help='answer /media/ requests through aiohttp\'s request path too (by default the connection layer answers '
                             'simple GET and HEAD requests for public media itself, with the same answers; docs/receiver.md)')
    parser.add_argument('--version', action='version', version='%(prog)s ' + __version__)
    _add_registry_args(parser)
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error('--tls-cert and --tls-key go together')
    if args.public_url and not args.public_url.startswith(('http://', 'https://')):
        parser.error('--public-url must start with http:// or https://')
    if not 0 <= args.port <= 65535:
        parser.error('--port must be 0-65535')
    database_url = args.database_url or os.environ.get(DATABASE_URL_ENV) or None
    if database_url is not None and not is_postgres_url(database_url):
        parser.error('--database-url must start with postgresql:// (SQLite is the default, in --data-dir)')
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
                    public_url=args.public_url, database_url=database_url,
                    tls_cert=args.tls_cert, tls_key=args.tls_key, api_token=token, site_keys=tuple(site_keys),
                    access_log=args.access_log,
                    log_file=args.log_file, log_level=args.log_level, pid_file=args.pid_file, backlog=args.backlog,
                    header_timeout=args.header_timeout, body_timeout=args.body_timeout, idle_timeout=args.idle_timeout,
                    send_timeout=args.send_timeout, notsent_lowat=args.notsent_lowat, max_connections=args.max_connections,
                    max_medium_bytes=args.max_medium_bytes,
                    media_fast_path=args.media_fast_path,
                    **_registry_settings(parser, args))


# ------------------------------------------------------------------ the embedded OCI registry (registry/)

def _add_registry_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('embedded OCI registry', 'serve the OCI Distribution API under /v2/ (docs/registry.md)')
    group.add_argument('--oci-layout', type=Path, help='OCI image layout directory to serve and store under /v2/ (created if missing); '
                                                       'without it /v2/ is 404')
    group.add_argument('--oci-htpasswd', type=Path, help='htpasswd file (bcrypt entries, htpasswd -B) of the users who may push; '
                                                         'the API token is accepted as a password too')
    group.add_argument('--oci-pull-auth', action='store_true', help='pulls need credentials too (default: pull is open)')
    group.add_argument('--oci-allow-delete', action='store_true', help='allow DELETE of manifests and tags')
    group.add_argument('--oci-default-repository', help='repository of layout entries whose ref name is a bare tag '
                                                        '(skopeo copy ... oci:DIR:TAG); default: such entries are not served')


def _registry_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, t.Any]:
    if not args.oci_layout:
        for option in ('oci_htpasswd', 'oci_pull_auth', 'oci_allow_delete', 'oci_default_repository'):
            if getattr(args, option):
                parser.error('--%s needs --oci-layout' % option.replace('_', '-'))
        return {}
    from .registry.layout import NAME  # pylint: disable=import-outside-toplevel
    if args.oci_default_repository and not NAME.fullmatch(args.oci_default_repository):
        parser.error('--oci-default-repository %r: not a repository name (lowercase, e.g. library or tools/sgdisk)' % args.oci_default_repository)
    if args.oci_htpasswd is not None:
        from .registry.auth import Htpasswd  # pylint: disable=import-outside-toplevel
        try:
            Htpasswd(args.oci_htpasswd)
        except OSError as exc:
            parser.error('--oci-htpasswd: cannot read %s: %s' % (args.oci_htpasswd, exc.strerror))
        except ValueError as exc:
            parser.error('--oci-htpasswd: %s' % exc)
    return {'oci_layout': args.oci_layout.absolute(), 'oci_htpasswd': args.oci_htpasswd.absolute() if args.oci_htpasswd else None,
            'oci_pull_auth': args.oci_pull_auth, 'oci_allow_delete': args.oci_allow_delete,
            'oci_default_repository': args.oci_default_repository}


def _install_registry(app: web.Application, settings: Settings) -> None:
    from .registry import RegistryConfig, install  # pylint: disable=import-outside-toplevel
    assert settings.oci_layout is not None
    install(app, RegistryConfig(layout_dir=settings.oci_layout, htpasswd=settings.oci_htpasswd, api_token=settings.api_token,
                                pull_auth=settings.oci_pull_auth, allow_delete=settings.oci_allow_delete,
                                default_repository=settings.oci_default_repository))


def _open_blobs(app: web.Application) -> Layout | None:
    """The registry's layout, whose blob GETs the media fast path serves: None without a registry, or when pull needs
    credentials (aiohttp's path checks them)."""
    from .registry import REGISTRY_KEY  # pylint: disable=import-outside-toplevel
    registry = app.get(REGISTRY_KEY)
    if registry is None or registry.auth.pull_auth:
        return None
    return registry.layout


def _setup_logging(settings: Settings) -> None:
    handler: logging.Handler
    if settings.log_file:
        try:
            Path(settings.log_file).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = logging.FileHandler(settings.log_file)
        except OSError as exc:
            raise StartupError(settings.log_file, 'cannot write the log file: %s' % _cause(exc)) from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except OSError as exc:
        raise StartupError(exc.filename or settings.tls_cert, 'cannot read the TLS certificate or key: %s' % _cause(exc)) from None
    except ssl.SSLError as exc:
        raise StartupError('%s, %s' % (settings.tls_cert, settings.tls_key), 'not a usable certificate and key: %s' % (exc.reason or exc)) from None
    return context


def _cause(exc: OSError) -> str:
    """An OSError as an operator reads it: "read-only file system", "no space left on device"."""
    return (exc.strerror or str(exc)).lower() if exc.errno else str(exc)


# SQLite's own words for what a file-level check above cannot see.
_SQLITE_CAUSES = {
    'file is not a database': 'not an SQLite database (move it away or restore it)',
    'database disk image is malformed': 'the database is damaged (restore it from a backup)',
    'database or disk is full': 'no space left on device',
    'attempt to write a readonly database': 'read-only (the file, its directory or the file system)',
    'database is locked': 'locked by another process (is another receiver running on this data directory?)',
}


def _probe_directory(directory: Path, what: str, size: int = 64 * 1024) -> None:
    """Create ``directory`` if needed, then create, write ``size`` bytes, fsync and remove a probe file in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise StartupError(directory, '%s exists and is not a directory' % what) from None
    except OSError as exc:
        raise StartupError(directory, 'cannot create the %s: %s' % (what, _cause(exc))) from None
    if not directory.is_dir():
        raise StartupError(directory, '%s exists and is not a directory' % what)
    probe = directory / ('.l3metal-receiver-probe-%d' % os.getpid())
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b'\0' * size)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise StartupError(directory, 'cannot write to the %s: %s' % (what, _cause(exc))) from None


def database_of(settings: Settings) -> str:
    """The store the receiver opens: the PostgreSQL URL, or the SQLite file in the data directory."""
    return settings.database_url or str(settings.data_dir / 'receiver.sqlite3')


def check_storage(settings: Settings) -> Path:
    """What start-up needs of the file system, each failure a ``StartupError``; returns the SQLite database path."""
    _probe_directory(settings.data_dir, 'data directory')
    database = settings.data_dir / 'receiver.sqlite3'
    for path in [] if settings.database_url else (database, Path(str(database) + '-wal'), Path(str(database) + '-shm')):
        try:
            os.close(os.open(path, os.O_RDWR))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StartupError(path, 'cannot open the database read-write: %s' % _cause(exc)) from None
    try:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        jobs = settings.media_dir / JOBS_MEDIA_DIR
        jobs.mkdir(exist_ok=True)
        probe = jobs / ('.probe-%d' % os.getpid())
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise StartupError(exc.filename or settings.media_dir, 'cannot create the per-job media directories: %s' % _cause(exc)) from None
    return database


def _database_error(database: Path | str, exc: BaseException) -> StartupError:
    if type(exc).__module__.startswith('psycopg'):
        return StartupError(redact_url(str(database)), 'PostgreSQL: %s' % (str(exc).strip().splitlines() or [type(exc).__name__])[0])
    if isinstance(exc, ImportError):
        return StartupError(redact_url(str(database)), 'PostgreSQL needs the psycopg package (pip install l3metal-receiver[postgresql]): %s' % exc)
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        return StartupError(database, _SQLITE_CAUSES.get(text.lower(), 'SQLite: %s' % text))
    if isinstance(exc, OSError):
        return StartupError(exc.filename or database, _cause(exc))
    return StartupError(database, str(exc))


SETTINGS_KEY: web.AppKey[Settings] = web.AppKey('settings', Settings)


def create_app(settings: Settings) -> web.Application:
    """The receiver as an aiohttp application for ``settings`` (nothing is opened until the app starts)."""
    install_client_error_filter()
    app = build_app(settings.api_token, settings.body_timeout, settings.max_medium_bytes)
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(_service_context)
    app.on_shutdown.append(_release_long_polls)
    if settings.oci_layout is not None:
        _install_registry(app, settings)
    return app


async def _service_context(app: web.Application) -> t.AsyncIterator[None]:
    """Start: directories, database (created and migrated before anything reads it), writer thread.  Stop: commit
    what is queued, close the database."""
    settings = app[SETTINGS_KEY]
    check_storage(settings)
    database = database_of(settings)
    committer = GroupCommitter(database)
    try:
        committer.start(asyncio.get_running_loop())
    except Exception as exc:  # pylint: disable=broad-exception-caught  # sqlite3, psycopg, OSError, a newer schema: one line
        committer.stop()
        raise _database_error(database, exc) from None
    try:
        service = JobService(settings.data_dir, settings.media_dir, committer, settings.public_url, settings.site_keys, database=database)
        service.remove_stale_job_media()
        service.start_listener(asyncio.get_running_loop())
    except Exception as exc:  # pylint: disable=broad-exception-caught
        committer.stop()
        raise _database_error(database, exc) from None
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
    before, open_files = raise_open_file_limit()
    max_connections = connection_limit(open_files, settings.max_connections)
    ssl_context = _ssl_context(settings)
    app = create_app(settings)
    limiter = app[LIMITER_KEY] = ConnectionLimiter(max_connections)
    handler_args: dict[str, t.Any] = {
        'access_log': logging.getLogger('l3metal_receiver.access') if settings.access_log else None,
        # aiohttp closes a connection that waits this long for a request (0: never)
        'keepalive_timeout': settings.idle_timeout if settings.idle_timeout > 0 else 0,
    }
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10.0, **handler_args)
    await runner.setup()
    try:
        service = app[SERVICE_KEY]
        fast_media = FastMedia(service.media_real, service.jobs_media_real, _open_blobs(app)) if settings.media_fast_path else None
        site = ListeningSite(runner, settings.host, settings.port, handler_args=handler_args, limiter=limiter,
                             header_timeout=settings.header_timeout, send_timeout=settings.send_timeout, ssl_context=ssl_context,
                             backlog=settings.backlog, fast_media=fast_media, notsent_lowat=settings.notsent_lowat)
        await site.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if settings.pid_file:
            try:
                Path(settings.pid_file).write_text('%d\n' % os.getpid())
            except OSError as exc:
                raise StartupError(settings.pid_file, 'cannot write the pid file: %s' % _cause(exc)) from None
        LOG.info('l3metal receiver %s listening on %s (data %s, media %s%s%s)', __version__, ', '.join(site_addresses(runner)),
                 redact_url(database_of(settings)), settings.media_dir, ', API token required' if settings.api_token else '',
                 ', %d site node key(s)' % len(settings.site_keys) if settings.site_keys else '')
        LOG.info('limits: %d connections, %d open files%s; timeouts: header %gs, body %gs, idle %gs, send %gs; unsent bytes per connection %s',
                 max_connections, open_files, ' (raised from %d)' % before if open_files != before else '', settings.header_timeout,
                 settings.body_timeout, settings.idle_timeout, settings.send_timeout, settings.notsent_lowat or "the kernel's setting")
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
    """Run the receiver; exit 0 after a clean stop, 1 when it cannot start (one line: the path and the cause), 2 for bad options."""
    settings = parse_args(argv)
    try:
        _setup_logging(settings)
        asyncio.run(serve(settings))
    except StartupError as exc:
        return _cannot_start(str(exc))
    except OSError as exc:  # bind: address in use, permission denied
        return _cannot_start(str(exc) if not exc.filename else '%s: %s' % (exc.filename, _cause(exc)))
    return 0


def _cannot_start(message: str) -> int:
    """The one line a failed start leaves: on standard error, and in the log file when there is one."""
    line = 'l3metal-receiver: cannot start: %s' % message
    sys.stderr.write(line + '\n')
    sys.stderr.flush()
    root = logging.getLogger()
    if any(isinstance(handler, logging.FileHandler) for handler in root.handlers):
        LOG.error('%s', line)
    return 1
