"""Fills in the placeholders (``@NAME@``) of ``config/nginx.conf`` and prints the result.

    python3 -m config.render_nginx [NAME=VALUE ...] > /etc/nginx/nginx.conf

The defaults suit Debian's nginx package, with gunicorn (``make serve``) on 127.0.0.1:8000;
every placeholder left unset takes its default. Standard library only, no Django.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf")

DEFAULTS = {
    "USER": "www-data",  # nginx's worker processes (the master runs as root)
    "PID": "/run/nginx.pid",
    "ERROR_LOG": "/var/log/nginx/error.log",
    "ACCESS_LOG": "/var/log/nginx/access.log",
    "TEMP_DIR": "/var/lib/nginx",  # request bodies being received, answers being sent
    "UPSTREAM": "127.0.0.1:8000",  # gunicorn: HOST=127.0.0.1 PORT=8000 make serve
    "HTTP_LISTEN": "80",
    "HTTPS_LISTEN": "443",
    "SERVER_NAME": "models.example.org",
    "SSL_CERTIFICATE": "/etc/ssl/models-api/fullchain.pem",
    "SSL_CERTIFICATE_KEY": "/etc/ssl/models-api/privkey.pem",
}

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def render(**values: str) -> str:
    """The template with ``values`` (and the defaults for the rest) in place."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown placeholders: {', '.join(sorted(unknown))}.")
    filled = {**DEFAULTS, **values}
    return _PLACEHOLDER.sub(lambda match: filled[match.group(1)], TEMPLATE.read_text())


def main(arguments: list[str]) -> int:
    values = {}
    for argument in arguments:
        name, equals, value = argument.partition("=")
        if not equals:
            print(f"Give NAME=VALUE, not {argument!r}.", file=sys.stderr)
            return 2
        values[name] = value
    try:
        sys.stdout.write(render(**values))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
