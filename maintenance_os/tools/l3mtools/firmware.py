# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""firmware-flash.service / supermicro-flash.service: download FIRMWARE_URL and run the vendor's flash command.

The command comes from the image (FLASH_COMMAND, e.g. Supermicro's
``/opt/supermicro/sum -c UpdateBios --file {firmware}``); ``{firmware}`` becomes the downloaded
file's path.  It is split like a shell would split it but run without a shell.  FIRMWARE_SHA256
(the recipe's firmware_sha256) is checked before anything is flashed.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shlex
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

from l3metal_contract.retry import RetryPolicy, parse_retry_after

from .common import ToolError, env, log, main_wrapper, run

CHUNK = 1024 * 1024
PLACEHOLDER = '{firmware}'


def file_name(url: str) -> str:
    name = posixpath.basename(urllib.parse.urlsplit(url).path)
    return name if name and name not in ('.', '..') else 'firmware.bin'


def download(url: str, dest: str, attempts: int = 3, timeout: float = 60.0, ca_file: str | None = None,
             retry: RetryPolicy | None = None) -> str:
    """Stream url to dest; return its sha256.  Retries connection errors, 408, 429 and 5xx (honouring ``Retry-After``)."""
    policy = retry or RetryPolicy(attempts=attempts, backoff=1.0, max_delay=30.0)
    context = ssl.create_default_context(cafile=ca_file)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    last = ''
    for attempt in range(policy.attempts):
        digest = hashlib.sha256()
        retry_after = None
        try:
            with opener.open(url, timeout=timeout) as response, open(dest, 'wb') as handle:
                for chunk in iter(lambda: response.read(CHUNK), b''):
                    digest.update(chunk)
                    handle.write(chunk)
            return digest.hexdigest()
        except urllib.error.HTTPError as exc:
            last = 'HTTP %d' % exc.code
            if exc.code < 500 and exc.code not in (408, 429):
                break
            retry_after = parse_retry_after(exc.headers.get('Retry-After') if exc.headers else None)
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, 'reason', exc))
        if policy.should_retry(attempt):
            policy.wait(attempt, retry_after)
    raise ToolError('cannot download firmware from %s: %s' % (url, last))


def flash_argv(command: str, firmware: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ToolError('FLASH_COMMAND %r cannot be split: %s' % (command, exc)) from None
    if not argv:
        raise ToolError('FLASH_COMMAND is empty')
    if not any(PLACEHOLDER in arg for arg in argv):
        argv.append(PLACEHOLDER)
    return [arg.replace(PLACEHOLDER, firmware) for arg in argv]


def flash(url: str, command: str, expected_sha256: str | None, work_dir: str, ca_file: str | None = None) -> list[str]:
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, file_name(url))
    log('downloading %s' % url)
    actual = download(url, path, ca_file=ca_file)
    if expected_sha256 and actual != expected_sha256.lower():
        os.unlink(path)
        raise ToolError('firmware from %s has sha256 %s, the recipe expects %s: not flashed' % (url, actual, expected_sha256.lower()))
    log('firmware %s sha256 %s%s' % (path, actual, ' (matches firmware_sha256)' if expected_sha256 else ''))
    argv = flash_argv(command, path)
    run(argv)
    return argv


def main() -> None:
    url = env('FIRMWARE_URL')
    command = env('FLASH_COMMAND')
    flash(url, command, os.environ.get('FIRMWARE_SHA256') or None, os.environ.get('FIRMWARE_WORK_DIR', '/var/tmp/firmware'),
          os.environ.get('FIRMWARE_CA_FILE') or None)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'firmware'))
