# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Typed Redfish errors.

Every error names the BMC (its base URL, never credentials), and when a request failed, the request
(``PATCH /redfish/v1/Systems/1``) and what the BMC said about it (the ``@Message.ExtendedInfo``
entries of its error body).  Modules turn them into ``fail_json`` with ``to_result()`` as extra keys.
"""

from __future__ import annotations

import dataclasses
import typing as t


@dataclasses.dataclass(frozen=True)
class BmcMessage:
    """One ``@Message.ExtendedInfo`` entry (or the top-level ``error.message``) of a BMC answer."""

    message: str
    message_id: str = ''
    severity: str = ''
    resolution: str = ''

    def __str__(self) -> str:
        text = self.message or self.message_id
        if self.message_id and self.message:
            text = '%s (%s)' % (self.message, self.message_id)
        if self.resolution:
            text += ' Resolution: %s' % self.resolution
        return text

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def parse_bmc_messages(body: t.Any) -> list[BmcMessage]:
    """Messages from a Redfish error body ``{"error": {"message": ..., "@Message.ExtendedInfo": [...]}}``.

    The extended entries come first; the generic top-level message ("A general error has occurred. See
    ExtendedInfo for more information") is only used when there is nothing more specific.
    """
    if not isinstance(body, dict):
        return []
    error = body.get('error')
    if not isinstance(error, dict):
        error = body
    info = error.get('@Message.ExtendedInfo')
    if isinstance(info, dict):
        info = [info]
    entries = [BmcMessage(str(e.get('Message') or ''), str(e.get('MessageId') or ''), str(e.get('Severity') or ''),
                          str(e.get('Resolution') or '')) for e in (info if isinstance(info, list) else []) if isinstance(e, dict)]
    code = str(error.get('code') or '')
    # entries that only repeat the top-level code say nothing; iLO sends entries with a MessageId and no text
    entries = [m for m in entries if m.message or (m.message_id and m.message_id != code)]
    if not any(m.message for m in entries) and error.get('message'):
        entries.insert(0, BmcMessage(str(error['message']), code))
    return entries


class RedfishError(Exception):
    """Base class: something about the BMC or the request made to it went wrong."""

    def __init__(self, message: str, *, bmc: str | None = None, method: str | None = None, url: str | None = None,
                 status: int | None = None, bmc_messages: t.Sequence[BmcMessage] = ()) -> None:
        self.message = message
        self.bmc = bmc
        self.method = method
        self.url = url
        self.status = status
        self.bmc_messages = list(bmc_messages)
        self.notes: list[str] = []
        super().__init__(message)

    def __str__(self) -> str:
        return self.describe()

    @property
    def request(self) -> str | None:
        if not self.method or not self.url:
            return None
        return '%s %s' % (self.method, self.url)

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.bmc_messages if m.message_id]

    def describe(self) -> str:
        text = self.message
        if self.request and self.request not in text:
            text += ' [request: %s%s]' % (self.request, '' if self.status is None else ' -> HTTP %d' % self.status)
        if self.bmc_messages:
            text += '; the BMC said: ' + ' | '.join(str(m) for m in self.bmc_messages)
        for note in self.notes:
            text += '; ' + note
        return text

    def to_result(self) -> dict[str, t.Any]:
        """Extra keys for ``fail_json``: where the error happened and what the BMC said."""
        result: dict[str, t.Any] = {'bmc': self.bmc, 'error_type': type(self).__name__}
        if self.request:
            result['request'] = self.request
        if self.status is not None:
            result['http_status'] = self.status
        if self.bmc_messages:
            result['bmc_messages'] = [m.as_dict() for m in self.bmc_messages]
        return result


class RedfishConnectionError(RedfishError):
    """The BMC could not be reached or did not answer within the timeout."""


class RedfishTLSError(RedfishConnectionError):
    """The TLS handshake failed, usually because the BMC certificate is not trusted."""


class RedfishAuthError(RedfishError):
    """The BMC rejected the credentials or the account lacks the privilege (HTTP 401/403)."""


class RedfishHTTPError(RedfishError):
    """The BMC answered a request with an error status other than 401/403."""


class RedfishSelectionError(RedfishError):
    """The requested system, manager or virtual media slot does not exist or is ambiguous."""


class RedfishUnsupportedError(RedfishError):
    """The BMC lacks a feature the request needs (virtual media, a boot target, a reset type)."""


class RedfishVerifyError(RedfishError):
    """The BMC accepted a change but reading the resource back shows it did not happen."""


class RedfishTimeoutError(RedfishError):
    """A wanted state (power state) was not reached before the deadline."""
