"""Keeps credentials out of the logs, whatever a message or its arguments carry.

Besides what looks like a credential (``Token ...``, ``password=...``, S3 signatures), the
token of a signed download link (``/api/models/records/files/<token>``) is one: it is the only
credential that link needs, and it spells the storage key in readable base64. The same
``redact`` serves Django's log handlers (``RedactCredentials``) and gunicorn's access log
(``config.gunicorn_logging``).
"""

from __future__ import annotations

import logging
import re

_CREDENTIALS = re.compile(
    r"(?i)(\b(?:token|bearer|basic)\s+"
    r"|\b(?:token|key|password|secret|signature|x-amz-security-token|x-amz-signature)="
    r"|\b(?:x-amz-security-token|x-api-key)['\"]?\s*[:=]\s*['\"]?)"
    r"[^\s&,;'\"]+"
)


#: The token segment of a signed local download link (``records.urls``, "record-file").
_DOWNLOAD_TOKEN = re.compile(r"(/records/files/)[^/?#\s'\"]+")


def _keep_prefix(match: re.Match) -> str:
    return f"{match.group(1)}[redacted]"


def redact(text: str) -> str:
    # A function as the replacement: a template would be parsed on every call, even when
    # nothing matches (most calls), which costs more than the search itself.
    return _DOWNLOAD_TOKEN.sub(_keep_prefix, _CREDENTIALS.sub(_keep_prefix, text))


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
