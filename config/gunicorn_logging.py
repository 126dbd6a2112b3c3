"""Gunicorn's access log without credentials (``logger_class`` in ``config/gunicorn.conf.py``).

Gunicorn formats its access log itself, outside Django's logging and its redaction filter:
the path of a signed download link (``/api/models/records/files/<token>``) would be logged
whole, and the token is that link's credential. Every atom of the access log format that
carries what a client sent or the service answered (the path, the request line, the query,
the referrer, the user agent, any header) goes through the same ``redact`` as Django's logs;
the atoms gunicorn makes itself (address, time, status, sizes, durations) need not.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

from models_api.api.log_filters import redact

#: Atoms whose text comes from the request or the response (besides ``{header}i``/``{header}o``).
_TEXT_ATOMS = frozenset({"r", "U", "q", "f", "a"})
_ATOM = re.compile(r"%\(([^)]+)\)")


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        named = {
            name.lower() if name.startswith("{") else name
            for name in _ATOM.findall(cfg.access_log_format or "")
        }
        self._redacted_atoms = sorted(
            name for name in named if name in _TEXT_ATOMS or name.startswith("{")
        )

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in self._redacted_atoms:
            value = atoms.get(name)
            if isinstance(value, str):
                atoms[name] = redact(value)
        return atoms
