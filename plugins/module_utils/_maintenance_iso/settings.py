# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The build's settings, checked once: every error names the module option it comes from."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import typing as t

from .errors import MaintenanceIsoError

BASES = ('debian', 'bootc')
DEFAULT_NAME = 'l3metal-maintenance'
DEFAULT_LABEL = 'L3M_MAINT'
DEFAULT_SUITE = 'trixie'
DEFAULT_MIRROR = 'http://deb.debian.org/debian'
DEFAULT_CACHE_DIR = '/var/cache/l3metal/maintenance_iso'
DEFAULT_TOOLS_REGISTRY = 'registry.example.com/l3metal/tools'
DEFAULT_CMDLINE_EXTRA = 'console=tty0 console=ttyS0,115200n8'
DEFAULT_SQUASHFS_LEVEL = 15
# dracut's dmsquash-live: find the ISO by label, copy LiveOS/squashfs.img to RAM (a BMC's virtual CD is read once,
# and may be slow), overlayfs on top (dracut 059+ drops to its emergency shell with rd.live.ram=1 without it).
LIVE_CMDLINE = ('root=live:CDLABEL={label}', 'rd.live.image', 'rd.live.ram=1', 'rd.live.overlay.overlayfs=1')

_LABEL = re.compile(r'^[A-Z0-9_]{1,32}$')          # ISO 9660 d-characters; also what root=live:CDLABEL= matches
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$')
_SUITE = re.compile(r'^[a-z][a-z0-9-]{1,30}$')
_URL = re.compile(r'^https?://[^\s/?#]+[^\s?#]*$')
_REFERENCE = re.compile(r'^[a-z0-9][a-z0-9._:/@+-]*$', re.IGNORECASE)
_REGISTRY_PATH = re.compile(r'^[a-z0-9][a-z0-9._:-]*(/[a-z0-9._-]+)*$')
_TOOL = re.compile(r'^[a-z0-9][a-z0-9-]*$')
_BUILD_ARG = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# GRUB parses the kernel command line of its linux command: these would be its syntax, not the kernel's.
_CMDLINE_FORBIDDEN = set('\n\r\t;{}$"\'\\#&|<>`')


@dataclasses.dataclass(frozen=True)
class SiteSettings:
    """The site layer (maintenance_os/site/): receiver for pre-flight failures, its CA, the site node key, registry settings."""

    receiver_url: str | None = None
    receiver_ca: str | None = None
    node_key: str | None = None
    registry_ca: str | None = None
    registry_auth: str | None = None      # docker/podman config.json, as JSON text
    registry_insecure: bool | None = None

    def files(self) -> dict[str, bytes]:
        """The site directory this describes, in the maintenance_os/site/example format: {relative path: content}."""
        env = ['# site.env written by the l3metal.provision.maintenance_iso module (maintenance_os/site/example/site.env)']
        files: dict[str, bytes] = {}
        if self.receiver_url:
            env.append('L3METAL_RECEIVER_URL="%s"' % self.receiver_url)
        if self.receiver_ca:
            files['receiver-ca.pem'] = _pem(self.receiver_ca)
            env.append('L3METAL_RECEIVER_CA_FILE="/etc/l3metal/receiver-ca.pem"')
        if self.node_key:
            files['node-key'] = (self.node_key.strip() + '\n').encode()
            env.append('L3METAL_NODE_KEY_FILE="/etc/l3metal/node-key"')
        if self.registry_ca:
            files['registry/ca.pem'] = _pem(self.registry_ca)
            env.append('OCI_CA_FILE="/etc/l3metal/registry/ca.pem"')
        if self.registry_auth:
            files['registry/auth.json'] = (self.registry_auth.strip() + '\n').encode()
            env.append('OCI_AUTH_FILE="/etc/l3metal/registry/auth.json"')
        if self.registry_insecure is not None:
            env.append('OCI_INSECURE="%s"' % ('true' if self.registry_insecure else 'false'))
        files['site.env'] = ('\n'.join(env) + '\n').encode()
        return files

    @property
    def secret(self) -> bool:
        return bool(self.node_key or self.registry_auth)


def _pem(text: str) -> bytes:
    return (text.strip() + '\n').encode()


@dataclasses.dataclass(frozen=True)
class BuildSpec:
    """What to build: the module's options after checking."""

    base: str
    src: str
    dest: str
    name: str
    cache_dir: str
    label: str
    kernel_cmdline_extra: str
    suite: str
    mirror: str
    bootc_image: str | None
    containerfile: str
    site_dir: str | None
    site: SiteSettings | None
    tools_registry: str
    tool_build_args: dict[str, dict[str, str]]
    containers_conf: str | None
    squashfs_level: int
    force: bool
    keep: int
    parallel: bool = True

    @property
    def kernel_cmdline(self) -> str:
        words = [word.format(label=self.label) for word in LIVE_CMDLINE]
        return ' '.join(words + self.kernel_cmdline_extra.split())

    @property
    def has_secrets(self) -> bool:
        if self.site is not None:
            return self.site.secret
        if not self.site_dir:
            return False
        return os.path.exists(os.path.join(self.site_dir, 'node-key')) or os.path.exists(os.path.join(self.site_dir, 'registry', 'auth.json'))


def host_mirror(sources: t.Sequence[str] = ('/etc/apt/sources.list',), parts: str = '/etc/apt/sources.list.d') -> str:
    """The Debian mirror the host's apt sources use (deb822 ``URIs:`` or one-line ``deb`` entries), security archives
    left out; ``DEFAULT_MIRROR`` when there is none (a non-Debian host)."""
    candidates: list[str] = []
    for path in sorted(glob.glob(os.path.join(parts, '*.sources'))):
        candidates += _deb822_uris(_read(path))
    for path in list(sources) + sorted(glob.glob(os.path.join(parts, '*.list'))):
        for line in _read(path).splitlines():
            words = line.split('#', 1)[0].split()
            if words[:1] == ['deb']:
                candidates += [word for word in words[1:] if word.startswith(('http://', 'https://'))][:1]
    for uri in candidates:
        if 'security' not in uri and '/debian' in uri:
            return uri.rstrip('/')
    return DEFAULT_MIRROR


def _read(path: str) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return handle.read()
    except OSError:
        return ''


def _deb822_uris(text: str) -> list[str]:
    uris = []
    for stanza in re.split(r'\n\s*\n', text):
        fields = dict(re.findall(r'^([A-Za-z-]+):\s*(.*)$', stanza, re.MULTILINE))
        if fields.get('Enabled', 'yes').strip().lower() == 'no' or 'deb' not in fields.get('Types', 'deb').split():
            continue
        uris += [uri for uri in fields.get('URIs', '').split() if uri.startswith(('http://', 'https://'))]
    return uris


def _site_settings(raw: t.Mapping[str, t.Any]) -> SiteSettings:
    url = raw.get('receiver_url')
    if url and not _URL.match(url):
        raise MaintenanceIsoError('%r is not an http(s) URL' % url, 'site.receiver_url')
    key = raw.get('node_key')
    if key is not None and (not key.strip() or any(c.isspace() for c in key.strip())):
        raise MaintenanceIsoError('the site node key must be one word (openssl rand -hex 32)', 'site.node_key')
    auth = raw.get('registry_auth')
    if isinstance(auth, str):
        try:
            auth = json.loads(auth)
        except ValueError as exc:
            raise MaintenanceIsoError('not JSON (a docker/podman config.json): %s' % exc, 'site.registry_auth') from None
    if auth is not None and not isinstance(auth, dict):
        raise MaintenanceIsoError('must be a mapping (a docker/podman config.json), got %s' % type(auth).__name__, 'site.registry_auth')
    for name in ('receiver_ca', 'registry_ca'):
        pem = raw.get(name)
        if pem and '-----BEGIN CERTIFICATE-----' not in pem:
            raise MaintenanceIsoError('expected PEM certificate text (-----BEGIN CERTIFICATE-----)', 'site.' + name)
    return SiteSettings(receiver_url=url or None, receiver_ca=raw.get('receiver_ca') or None, node_key=key.strip() if key else None,
                        registry_ca=raw.get('registry_ca') or None, registry_auth=json.dumps(auth, sort_keys=True, indent=1) if auth else None,
                        registry_insecure=raw.get('registry_insecure'))


def _tool_build_args(raw: t.Mapping[str, t.Any] | None) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for tool, args in (raw or {}).items():
        if not _TOOL.match(str(tool)):
            raise MaintenanceIsoError('%r is not a tool name (a directory of maintenance_os/tools/)' % tool, 'tool_build_args')
        if not isinstance(args, dict):
            raise MaintenanceIsoError('the build arguments of %s must be a mapping of NAME: value' % tool, 'tool_build_args')
        for name, value in args.items():
            if not _BUILD_ARG.match(str(name)) or name in ('BASE', 'INSTALL'):
                raise MaintenanceIsoError('%s: %r cannot be set (BASE and INSTALL are the module\'s own)' % (tool, name), 'tool_build_args')
            if not isinstance(value, (str, int, float, bool)):
                raise MaintenanceIsoError('%s: the value of %s must be a string' % (tool, name), 'tool_build_args')
        result[str(tool)] = {str(name): str(value) for name, value in args.items()}
    return result


def spec_from_params(params: t.Mapping[str, t.Any], mirror: str | None = None) -> BuildSpec:
    """Check the module options and turn them into a ``BuildSpec``; ``mirror`` is the default for ``mirror``."""
    base = params['base']
    if base not in BASES:
        raise MaintenanceIsoError('must be one of %s, got %r' % (', '.join(BASES), base), 'base')
    src = os.path.abspath(os.path.expanduser(params['src']))
    for rel in ('maintenance_os/Containerfile', 'maintenance_os/live/Containerfile', 'common/l3metal_contract'):
        if not os.path.exists(os.path.join(src, rel)):
            raise MaintenanceIsoError('%s is not a checkout or installed copy of the collection (no %s in it)' % (src, rel), 'src')
    dest = os.path.abspath(os.path.expanduser(params['dest']))
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise MaintenanceIsoError('%s exists and is not a directory (dest is the output directory)' % dest, 'dest')
    if not os.path.isdir(os.path.dirname(dest)):
        raise MaintenanceIsoError('the parent directory of %s does not exist' % dest, 'dest')
    name = params.get('name') or DEFAULT_NAME
    if not _NAME.match(name):
        raise MaintenanceIsoError('%r: letters, digits, ".", "_" and "-" (at most 100), starting with a letter or digit' % name, 'name')
    label = params.get('label') or DEFAULT_LABEL
    if not _LABEL.match(label):
        raise MaintenanceIsoError('%r: upper-case letters, digits and "_", at most 32 (ISO 9660 volume id)' % label, 'label')
    extra = params.get('kernel_cmdline_extra')
    extra = DEFAULT_CMDLINE_EXTRA if extra is None else extra
    bad = sorted(set(extra) & _CMDLINE_FORBIDDEN)
    if bad:
        raise MaintenanceIsoError('%s not allowed (GRUB would read it as its own syntax)' % ', '.join(repr(c) for c in bad), 'kernel_cmdline_extra')
    suite = params.get('suite') or DEFAULT_SUITE
    if not _SUITE.match(suite):
        raise MaintenanceIsoError('%r is not a Debian suite name (e.g. trixie)' % suite, 'suite')
    mirror_value = params.get('mirror') or mirror or DEFAULT_MIRROR
    if not _URL.match(mirror_value):
        raise MaintenanceIsoError('%r is not an http(s) URL' % mirror_value, 'mirror')
    bootc_image = params.get('bootc_image')
    if base == 'bootc' and not bootc_image:
        raise MaintenanceIsoError('base=bootc needs the bootc base image (e.g. quay.io/fedora/fedora-bootc:43; bootc >= 1.14 for '
                                  '"bootc container export")', 'bootc_image')
    if base != 'bootc' and bootc_image:
        raise MaintenanceIsoError('only used with base=bootc', 'bootc_image')
    if bootc_image and not _REFERENCE.match(bootc_image):
        raise MaintenanceIsoError('%r is not an image reference' % bootc_image, 'bootc_image')
    containerfile = params.get('containerfile') or 'maintenance_os/Containerfile'
    containerfile_path = containerfile if os.path.isabs(containerfile) else os.path.join(src, containerfile)
    if not os.path.isfile(containerfile_path):
        raise MaintenanceIsoError('%s does not exist' % containerfile_path, 'containerfile')
    site_dir = params.get('site_dir')
    site_raw = params.get('site')
    if site_dir and site_raw:
        raise MaintenanceIsoError('give site or site_dir, not both', 'site')
    if site_dir:
        site_dir = os.path.abspath(os.path.expanduser(site_dir))
        if not os.path.isfile(os.path.join(site_dir, 'site.env')):
            raise MaintenanceIsoError('%s has no site.env (see maintenance_os/site/example/)' % site_dir, 'site_dir')
    site = _site_settings(site_raw) if site_raw else None
    registry = params.get('tools_registry') or DEFAULT_TOOLS_REGISTRY
    if not _REGISTRY_PATH.match(registry):
        raise MaintenanceIsoError('%r is not a registry and repository path (e.g. registry.example.com/l3metal/tools)' % registry, 'tools_registry')
    conf = params.get('containers_conf')
    if conf:
        conf = os.path.abspath(os.path.expanduser(conf))
        if not os.path.isfile(conf):
            raise MaintenanceIsoError('%s does not exist' % conf, 'containers_conf')
    level = params.get('squashfs_level')
    level = DEFAULT_SQUASHFS_LEVEL if level is None else int(level)
    if not 1 <= level <= 22:
        raise MaintenanceIsoError('zstd levels go from 1 to 22, got %d' % level, 'squashfs_level')
    keep = params.get('keep')
    keep = 2 if keep is None else int(keep)
    if keep < 0:
        raise MaintenanceIsoError('must be 0 (keep every ISO) or more', 'keep')
    return BuildSpec(
        base=base, src=src, dest=dest, name=name, label=label, kernel_cmdline_extra=' '.join(extra.split()),
        cache_dir=os.path.abspath(os.path.expanduser(params.get('cache_dir') or DEFAULT_CACHE_DIR)),
        suite=suite, mirror=mirror_value.rstrip('/'), bootc_image=bootc_image,
        containerfile=os.path.relpath(containerfile_path, src) if containerfile_path.startswith(src + os.sep) else containerfile_path,
        site_dir=site_dir or None, site=site, tools_registry=registry.rstrip('/'),
        tool_build_args=_tool_build_args(params.get('tool_build_args')), containers_conf=conf or None,
        squashfs_level=level, force=bool(params.get('force')), keep=keep, parallel=params.get('parallel', True) is not False)
