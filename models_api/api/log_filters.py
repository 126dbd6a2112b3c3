"""Keeps credentials out of the logs, whatever a message or its arguments carry."""

from __future__ import annotations

import logging
import re

_CREDENTIALS = re.compile(
    r"(?i)(\b(?:token|bearer|basic)\s+"
    r"|\b(?:token|key|password|secret|signature|x-amz-security-token|x-amz-signature)="
    r"|\b(?:x-amz-security-token|x-api-key)['\"]?\s*[:=]\s*['\"]?)"
    r"[^\s&,;'\"]+"
)


def redact(text: str) -> str:
    return _CREDENTIALS.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
