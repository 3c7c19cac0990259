# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Build the per-job task medium: an ISO 9660 image (Joliet + Rock Ridge) or a FAT image.

The ISO is built in-process with pycdlib (no subprocess: a few small files take about a millisecond).
The FAT variant, for BMCs with a single virtual CD that take the task medium as a removable disk,
is built with GNU mtools (``mformat``/``mcopy``): it is what grub-mkrescue uses for its EFI images,
is packaged everywhere, needs no root or loop device, and is reproducible with
``SOURCE_DATE_EPOCH``.  The pure-Python FAT libraries on PyPI are either unmaintained or write the
current time into every directory entry.

Both builders are deterministic: the same files give byte-identical images, so a re-run of the
module reports ``changed: false``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import types
import typing as t

from ._contract.recipe import PAYLOAD_FILES, RecipeError, RecipeProblem, decode_payload, recipe_json, validate_recipe
from ._contract.medium import DEFAULT_LABEL, META_DATA_FILE, RECIPE_FILE, RESERVED_NAMES, SCHEMA_FILE
from ._contract.recipe_schema import schema_json

try:
    import pycdlib
    import pycdlib.dates
    import pycdlib.headervd
    import pycdlib.pycdlib
    import pycdlib.utils
    HAS_PYCDLIB = True
    PYCDLIB_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_PYCDLIB = False
    PYCDLIB_IMPORT_ERROR = exc

# Every timestamp on the medium: 2020-01-01T00:00:00Z (FAT cannot store dates before 1980).
FIXED_EPOCH = 1577836800
DEFAULT_VOLUME_LABEL = DEFAULT_LABEL

_NAME_COMPONENT = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
_ISO_BAD_CHARS = re.compile(r'[^A-Z0-9_]')
MAX_DEPTH = 7  # ISO 9660 allows 8 directory levels including the root


class TaskMediaError(Exception):
    """The task medium cannot be built; the message names the option or file at fault."""


class MediaFile(t.NamedTuple):
    """A file on the medium: ``name`` is a relative POSIX path (``recipe.json``, ``scripts/post.sh``)."""

    name: str
    data: bytes


class TaskMedia(t.NamedTuple):
    """A built image and what it holds."""

    data: bytes
    files: list[str]
    sha256: str


# ---------------------------------------------------------------------------------------------------
# what goes on the medium


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode('utf-8')


def check_file_name(name: str, option: str = 'files') -> str:
    """Validate a file name given by the user; return it normalized (no leading ./ or /)."""
    if not isinstance(name, str) or not name:
        raise TaskMediaError('%s: file names must be non-empty strings' % option)
    clean = name.strip('/')
    parts = clean.split('/')
    if len(parts) > MAX_DEPTH:
        raise TaskMediaError('%s: %r is nested more than %d directories deep' % (option, name, MAX_DEPTH - 1))
    for part in parts:
        if part in ('.', '..') or not _NAME_COMPONENT.match(part):
            raise TaskMediaError('%s: %r is not a valid file name (use letters, digits, ".", "-" and "_", up to 64 characters per '
                                 'path component, starting with a letter or digit)' % (option, name))
    if clean in RESERVED_NAMES:
        raise TaskMediaError('%s: %r is reserved (recipe, schema and payload files have their own options)' % (option, name))
    return clean


def collect_files(recipe: t.Any = None,
                  payloads: t.Mapping[str, str | bytes | None] | None = None,
                  meta_data: str | bytes | None = None,
                  extra_files: t.Mapping[str, str | bytes] | None = None,
                  validate: bool = True) -> list[MediaFile]:
    """Decide the medium's files.

    ``payloads`` maps ``user_data`` / ``unattend_xml`` / ``ks_cfg`` to content given as options.  The
    same payload may also sit in the recipe (base64); either way it is written once, as its own file,
    and removed from ``recipe.json``.  Different content in both places is an error.
    """
    payloads = {key: value for key, value in (payloads or {}).items() if value is not None}
    for key in payloads:
        if key not in PAYLOAD_FILES:
            raise TaskMediaError('unknown payload %r (known: %s)' % (key, ', '.join(PAYLOAD_FILES)))
    files: dict[str, bytes] = {}
    if recipe is not None:
        if validate:
            recipe = validate_recipe(recipe, attached=payloads.keys())
        elif not isinstance(recipe, dict):
            raise TaskMediaError('recipe: must be a mapping when validate is false')
        recipe = dict(recipe)
        for key, file_name in PAYLOAD_FILES.items():
            if key not in recipe:
                continue
            try:
                embedded = decode_payload(recipe, key)
            except ValueError:
                raise RecipeError([RecipeProblem(key, 'is not valid base64')]) from None
            del recipe[key]
            option = payloads.get(key)
            if option is not None and _as_bytes(option) != embedded:
                raise TaskMediaError('%s is given both in the recipe and as an option, with different content; give it once' % key)
            if embedded is not None:
                files[file_name] = embedded
        files[RECIPE_FILE] = recipe_json(recipe).encode('ascii')
        files[SCHEMA_FILE] = schema_json().encode('ascii')
    for key, value in payloads.items():
        if value is not None:
            files.setdefault(PAYLOAD_FILES[key], _as_bytes(value))
    if meta_data is not None:
        files[META_DATA_FILE] = _as_bytes(meta_data)
    for name, content in (extra_files or {}).items():
        clean = check_file_name(name)
        if clean in files:
            raise TaskMediaError('files: %r is given twice' % name)
        files[clean] = _as_bytes(content)
    if not files:
        raise TaskMediaError('nothing to put on the medium: give recipe, ks_cfg, user_data, unattend_xml, meta_data or files')
    _check_no_file_dir_clash(files)
    return [MediaFile(name, files[name]) for name in sorted(files)]


def _check_no_file_dir_clash(files: t.Mapping[str, bytes]) -> None:
    dirs = {'/'.join(name.split('/')[:i]) for name in files for i in range(1, name.count('/') + 1)}
    for name in files:
        if name in dirs:
            raise TaskMediaError('files: %r is used both as a file and as a directory' % name)


def check_volume_label(label: str, fmt: str) -> str:
    """Volume labels: ISO 9660 allows 32 characters, FAT 11; both are kept to A-Z, 0-9, _ and -."""
    limit = 11 if fmt == 'fat' else 32
    if not label or len(label) > limit or not re.match(r'^[A-Za-z0-9_-]+$', label):
        raise TaskMediaError('volume_label: %r is not valid for format %s (1 to %d letters, digits, "_" or "-")' % (label, fmt, limit))
    return label.upper()


# ---------------------------------------------------------------------------------------------------
# ISO 9660

_PYCDLIB_LOCK = threading.Lock()


class _FixedClock(types.ModuleType):
    """Stand-in for the ``time`` module inside pycdlib while an image is built.

    pycdlib stamps every record with ``time.time()`` and converts with ``time.localtime()``; both
    are pinned here (UTC, FIXED_EPOCH) so that images are reproducible on any host and time zone.
    The converted struct is computed once: pycdlib converts the same instant dozens of times.
    """

    def __init__(self) -> None:
        super().__init__('time')
        self.__dict__.update(time.__dict__)
        fixed = time.gmtime(FIXED_EPOCH)

        def convert(secs: float | None = None) -> time.struct_time:
            return fixed if secs is None or secs == FIXED_EPOCH else time.gmtime(secs)

        self.time = lambda: float(FIXED_EPOCH)
        self.localtime = convert
        self.gmtime = convert


_FIXED_CLOCK = _FixedClock()


def _iso_names(names: t.Iterable[str]) -> dict[str, str]:
    """Map each medium path to a unique ISO 9660 level 3 path (``ks.cfg`` -> ``/KS.CFG;1``)."""
    mapping: dict[str, str] = {}
    used: set[str] = set()

    def unique(candidate: str, make: t.Callable[..., str]) -> str:
        result = make(candidate)
        counter = 1
        while result in used:
            suffix = '_%d' % counter
            result = make(candidate[:max(1, 24 - len(suffix))] + suffix)
            counter += 1
        used.add(result)
        return result

    dir_map: dict[str, str] = {'': ''}
    for name in sorted(names):
        parts = name.split('/')
        for depth in range(1, len(parts)):
            rel = '/'.join(parts[:depth])
            if rel not in dir_map:
                parent = dir_map['/'.join(parts[:depth - 1])]
                base = _ISO_BAD_CHARS.sub('_', parts[depth - 1].upper())[:30]
                dir_map[rel] = unique(base, functools.partial('{0}/{1}'.format, parent))
        parent = dir_map['/'.join(parts[:-1])]
        stem, dot, ext = parts[-1].upper().rpartition('.')
        if not dot:
            stem, ext = ext, ''
        stem = _ISO_BAD_CHARS.sub('_', stem)[:24] or '_'
        ext = _ISO_BAD_CHARS.sub('_', ext)[:5]
        mapping[name] = unique(stem, functools.partial('{0}/{2}.{1};1'.format, parent, ext))
    mapping.update({rel + '/': iso for rel, iso in dir_map.items() if rel})
    return mapping


def build_iso(files: t.Sequence[MediaFile], volume_label: str = DEFAULT_VOLUME_LABEL) -> bytes:
    """An ISO 9660 image with Joliet and Rock Ridge trees holding ``files``."""
    if not HAS_PYCDLIB:
        raise TaskMediaError('the pycdlib Python library is required to build ISO images')
    label = check_volume_label(volume_label, 'iso')
    names = _iso_names(f.name for f in files)
    out = io.BytesIO()
    with _PYCDLIB_LOCK:
        patched = (pycdlib.pycdlib, pycdlib.headervd, pycdlib.dates, pycdlib.utils)
        saved = [module.__dict__['time'] for module in patched]
        for module in patched:
            module.__dict__['time'] = _FIXED_CLOCK
        try:
            iso = pycdlib.PyCdlib()
            iso.new(interchange_level=3, joliet=3, rock_ridge='1.09', vol_ident=label, sys_ident='LINUX',
                    app_ident_str='l3metal.provision task_iso')
            directories = sorted({name for name in names if name.endswith('/')}, key=lambda d: d.count('/'))
            for rel in directories:
                iso.add_directory(names[rel], rr_name=rel.rstrip('/').rsplit('/', 1)[-1], joliet_path='/' + rel.rstrip('/'), file_mode=0o40555)
            for media_file in files:
                iso.add_fp(io.BytesIO(media_file.data), len(media_file.data), names[media_file.name],
                           rr_name=media_file.name.rsplit('/', 1)[-1], joliet_path='/' + media_file.name, file_mode=0o100444)
            iso.write_fp(out)
            iso.close()
        finally:
            for module, original in zip(patched, saved, strict=True):
                module.__dict__['time'] = original
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------
# FAT


def _fat_size(files: t.Sequence[MediaFile]) -> int:
    """Image size: content rounded up to 4 KiB clusters, plus room for FAT and directories; at least 2 MiB."""
    content = sum((len(f.data) + 4095) // 4096 * 4096 for f in files)
    dirs = {f.name.rsplit('/', 1)[0] for f in files if '/' in f.name}
    needed = content + (len(dirs) + 1) * 4096 + content // 64 + 1024 * 1024
    mib = 1024 * 1024
    return max(2 * mib, (needed + mib - 1) // mib * mib)


def _run_mtools(argv: list[str], env: dict[str, str]) -> None:
    try:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise TaskMediaError('cannot run %s (install mtools): %s' % (argv[0], exc)) from None
    if proc.returncode != 0:
        raise TaskMediaError('%s failed (exit %d): %s' % (' '.join(argv[:1]), proc.returncode, proc.stdout.decode('utf-8', 'replace').strip()))


def build_fat(files: t.Sequence[MediaFile], volume_label: str = DEFAULT_VOLUME_LABEL) -> bytes:
    """A FAT image (no partition table, like a floppy or a superfloppy USB stick) holding ``files``."""
    label = check_volume_label(volume_label, 'fat')
    for tool in ('mformat', 'mcopy', 'mmd'):
        if shutil.which(tool) is None:
            raise TaskMediaError('%s not found: format fat needs GNU mtools (Debian/Ubuntu/Fedora package "mtools")' % tool)
    # A serial derived from the content keeps images reproducible yet distinct per job.
    digest = hashlib.sha256()
    for media_file in files:
        digest.update(media_file.name.encode('utf-8') + b'\0' + hashlib.sha256(media_file.data).digest())
    serial = digest.hexdigest()[:8]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(FIXED_EPOCH), MTOOLS_SKIP_CHECK='1', MTOOLSRC='/dev/null', TZ='UTC')
    with tempfile.TemporaryDirectory(prefix='l3metal-fat-') as work:
        image = os.path.join(work, 'media.img')
        with open(image, 'wb') as handle:
            handle.truncate(_fat_size(files))
        _run_mtools(['mformat', '-i', image, '-v', label, '-N', serial, '::'], env)
        dirs = sorted({'/'.join(f.name.split('/')[:i]) for f in files for i in range(1, f.name.count('/') + 1)}, key=lambda d: d.count('/'))
        if dirs:
            _run_mtools(['mmd', '-i', image] + ['::/' + d for d in dirs], env)
        staging = os.path.join(work, 'files')
        by_dir: dict[str, list[str]] = {}
        for media_file in files:
            local = os.path.join(staging, media_file.name)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, 'wb') as handle:
                handle.write(media_file.data)
            os.utime(local, (FIXED_EPOCH, FIXED_EPOCH))
            by_dir.setdefault(media_file.name.rpartition('/')[0], []).append(local)
        for directory, locals_ in sorted(by_dir.items()):
            _run_mtools(['mcopy', '-m', '-o', '-i', image] + locals_ + ['::/' + directory + ('/' if directory else '')], env)
        with open(image, 'rb') as handle:
            return handle.read()


# ---------------------------------------------------------------------------------------------------
# output


def build_media(files: t.Sequence[MediaFile], fmt: str = 'iso', volume_label: str = DEFAULT_VOLUME_LABEL) -> TaskMedia:
    if fmt == 'iso':
        data = build_iso(files, volume_label)
    elif fmt == 'fat':
        data = build_fat(files, volume_label)
    else:
        raise TaskMediaError('format: %r is not one of iso, fat' % fmt)
    return TaskMedia(data, [f.name for f in files], hashlib.sha256(data).hexdigest())


def file_sha256(path: str) -> str | None:
    """SHA-256 of an existing file, or None when there is none."""
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b''):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TaskMediaError('dest: cannot read %s: %s' % (path, exc.strerror or exc)) from None
    return digest.hexdigest()


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename, so
    that a BMC downloading the old medium never sees a half-written one.

    No fsync: the rename is what readers need, and a medium lost to a power cut is rebuilt
    byte-identically from its inputs by the next run (it is derived data, not stored state).
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise TaskMediaError('dest: directory %s does not exist' % directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
