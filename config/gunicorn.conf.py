"""Gunicorn settings for ``make serve`` (the production server), from the environment.

Threaded workers: a long NDJSON stream holds a thread, not a whole worker, and the worker's
heartbeat keeps running while it streams (a sync worker would be killed after ``timeout``).
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# The longest request line gunicorn allows (the default is 4094): a stream filtered by a long
# list of names (``?site_names=...&site_names=...``) fits in it. nginx in front
# (config/nginx.conf) allows the same and answers a longer one itself, as JSON.
limit_request_line = 8190
# A header line nginx lets through (8,190 bytes) is passed on as "Name: value", one byte longer
# when the client put no space after the colon, and gunicorn counts the CRLF too: 8,193 (the
# default is 8,190) so that gunicorn never refuses, as HTML, a header nginx accepted.
limit_request_field_size = 8193
# Recycle workers now and then so that a leak, if any, cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
# Proxies whose X-Forwarded-* headers are trusted (set to the proxy's address).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
# The path without its query string: tokens travel in headers, never logged; a credential a
# client wrongly puts in the query would be.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
logger_class = "config.gunicorn_logging.RedactingLogger"
errorlog = "-"
