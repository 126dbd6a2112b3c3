"""Settings for the Models API, read from the environment (see README "Configuration").

With no environment at all the service runs on the embedded default: SQLite and local file
storage under ``var/``. ``DATABASE_URL`` selects PostgreSQL; ``AWS_STORAGE_BUCKET_NAME`` selects
S3 (or any S3-compatible store through ``AWS_S3_ENDPOINT_URL``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.database import pooler_name, postgres_options, use_pooler
from config.env import Env

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("DJANGO_VAR_DIR", str(BASE_DIR / "var")))


def _secret_key() -> str:
    """The key from DJANGO_SECRET_KEY, or one generated once and kept in ``var/secret_key``.

    A generated key keeps the embedded default free of configuration while never shipping a
    known key; production sets DJANGO_SECRET_KEY.
    """
    key = env.str("DJANGO_SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS")

# --- HTTPS and proxies (all off by default; DJANGO_HTTPS=true turns on the usual set) ---------
_https = env.bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", _https)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", _https)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", 31_536_000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", _https)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", _https)
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", False)
if BEHIND_PROXY:
    # Trust X-Forwarded-Proto only when a proxy that sets it is known to stand in front.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "config.apps.AdminConfig",  # Django's admin, whose login refuses too many failures
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "models_api",
    "records",
]

MIDDLEWARE = [
    "models_api.api.middleware.ServiceUnavailableMiddleware",
    "models_api.api.request_guards.RejectNulMiddleware",
    "models_api.api.request_guards.LengthRequiredMiddleware",
    "models_api.api.request_guards.HttpsWritesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "models_api.api.replicas.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Every API path answers with and without its trailing slash (the routes accept both), so
# Django must never redirect to add one: a redirected POST loses its body.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
def _parsed_database_url(url: str, variable: str) -> dict:
    """A database URL as Django's settings: connections kept and health-checked before reuse."""
    try:
        return dj_database_url.parse(
            url,
            conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"{variable} is not a usable database URL: {error}") from None


_database_url = env.str("DATABASE_URL")
if _database_url:
    _database = _parsed_database_url(_database_url, "DATABASE_URL")
    if _database["ENGINE"] not in {
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    }:
        raise ImproperlyConfigured("DATABASE_URL must name PostgreSQL (postgres://) or SQLite.")
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _pooler = pooler_name(env.str("DATABASE_POOLER"))
        _database["OPTIONS"] = {
            # Fail fast (then answer 503) instead of hanging when the server is unreachable.
            **postgres_options(
                connect_timeout=env.int("DATABASE_CONNECT_TIMEOUT", 5), pooler=_pooler
            ),
            **_database.get("OPTIONS", {}),
        }
        use_pooler(_database, _pooler)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
    }
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database.setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers stream while a writer commits; IMMEDIATE takes the write lock at
            # BEGIN so that concurrent writers queue (up to "timeout") instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
DATABASES = {"default": _database}

# --- Read replicas (models_api.api.replicas) -----------------------------------------------
#: The replicas' aliases, ``replica_1``, ``replica_2``...: one per DATABASE_REPLICA_URLS entry.
DATABASE_REPLICAS: list[str] = []
for _number, _replica_url in enumerate(env.list("DATABASE_REPLICA_URLS"), start=1):
    if _database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL.")
    _replica = _parsed_database_url(_replica_url, f"DATABASE_REPLICA_URLS entry {_number}")
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URLS entry {_number} must name PostgreSQL (postgres://)."
        )
    _replica["OPTIONS"] = {
        # A replica that does not answer is skipped: find out quickly. DATABASE_POOLER holds
        # for the replicas too (its rules are harmless on a direct connection).
        **postgres_options(
            connect_timeout=env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", 2, minimum=1),
            pooler=_pooler,
        ),
        **_replica.get("OPTIONS", {}),
    }
    use_pooler(_replica, _pooler)
    _replica["TEST"] = {"MIRROR": "default"}  # the test run's replica is its own database
    DATABASES[f"replica_{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica_{_number}")
DATABASE_ROUTERS = ["models_api.api.replicas.ReplicaRouter"]
#: How long a replica that did not answer is skipped (its reads go to the primary).
DATABASE_REPLICA_RETRY_SECONDS = env.int("DATABASE_REPLICA_RETRY_SECONDS", 30, minimum=1)
#: How long after a user's write their reads need a replica that has replayed it.
DATABASE_REPLICA_READ_YOUR_WRITES_SECONDS = env.int(
    "DATABASE_REPLICA_READ_YOUR_WRITES_SECONDS", 300, minimum=1
)

# --- Cache: what several processes and servers share (throttle counts, replica state) ------
REDIS_URL = env.str("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must be a redis://, rediss:// or unix:// URL.")
    _redis_timeout = env.seconds("REDIS_TIMEOUT", 0.5, minimum=0.01)
    CACHES = {
        "default": {
            # Django's Redis cache, where an unreachable Redis is a miss (models_api.api.cache).
            "BACKEND": "models_api.api.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "models-api",
            "OPTIONS": {
                "socket_connect_timeout": _redis_timeout,
                "socket_timeout": _redis_timeout,
            },
        }
    }
else:
    # Each process counts on its own: the embedded default is one process group on one machine.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Storage -----------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: downloads go through signed, expiring links
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
STATIC_URL = "/static/"

#: Lifetime of the signed links that ``GET /records/id/{rid}/download`` redirects to.
RECORD_DOWNLOAD_EXPIRY = env.int("RECORD_DOWNLOAD_EXPIRY", 3600, minimum=1)

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "access_key": env.str("AWS_ACCESS_KEY_ID"),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY"),
            "security_token": env.str("AWS_SESSION_TOKEN"),
            "region_name": env.str("AWS_S3_REGION_NAME", env.str("AWS_DEFAULT_REGION")),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL"),
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE"),
            "signature_version": env.str("AWS_S3_SIGNATURE_VERSION", "s3v4"),
            "location": env.str("AWS_LOCATION", ""),
            "default_acl": None,
            "querystring_auth": True,  # private objects: every link is presigned
            "querystring_expire": RECORD_DOWNLOAD_EXPIRY,
            # Keys are unique by construction (ids), so skip the existence check per upload.
            "file_overwrite": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Request limits ----------------------------------------------------------------------
#: Largest JSON or form body (without files) a request may carry; larger answers 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.size("DJANGO_MAX_BODY_SIZE", 5 * 1024 * 1024)
#: Largest NDJSON body of a bulk ingest request; larger answers 413.
RECORDS_BULK_MAX_BODY_SIZE = env.size("RECORDS_BULK_MAX_BODY_SIZE", 64 * 1024 * 1024)
#: Largest file attached to one record; larger answers 413.
RECORD_FILE_MAX_SIZE = env.size("RECORD_FILE_MAX_SIZE", 100 * 1024 * 1024)
#: Deepest nesting accepted in any JSON value (deeper answers 400).
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", 64, minimum=1)
#: Largest ``limit`` a list takes (``?limit=``; more is a 400); the record streams have none.
API_MAX_LIMIT = env.int("API_MAX_LIMIT", 10_000, minimum=1)

# --- Auth --------------------------------------------------------------------------------
#: Failed authentications (wrong tokens, wrong admin passwords) a client address may make per
#: period before it is refused with 429 for the rest of it (``models_api.api.auth_failures``).
AUTH_FAILURE_THROTTLE_RATE = env.rate("API_AUTH_FAILURE_THROTTLE_RATE", "20/minute")
SESSION_ENGINE = "models_api.api.sessions"
AUTHENTICATION_BACKENDS = ["models_api.api.auth_backends.ModelBackend"]
CSRF_FAILURE_VIEW = "config.error_views.csrf_failure"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes an anonymous request a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "models_api.api.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["models_api.api.permissions.ModelPermissions"],
    "DEFAULT_PARSER_CLASSES": ["models_api.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "models_api.api.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "models_api.api.exception_handler.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_THROTTLE_RATE", "60/minute"),
        # Off by default: pipelines post records at full speed.
        "user": env.str("API_USER_THROTTLE_RATE"),
    },
    # Throttles identify clients by address: trust X-Forwarded-For only from the one proxy we
    # know of, so that a client cannot pick a new identity per request.
    "NUM_PROXIES": 1 if BEHIND_PROXY else 0,
    # ?format= (DRF's URL_FORMAT_OVERRIDE) wins over Accept; nothing satisfiable is a 406.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "models_api.api.negotiation.ContentNegotiation",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Models API",
    "DESCRIPTION": (
        "Tracks machine-learning models, their runs and datasets, and the timestamped records "
        "they produce. Authenticate with `Authorization: Token <key>` or `X-API-Key: <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "models_api.api.openapi.add_error_responses",
    ],
}

# --- Internationalisation and time -------------------------------------------------------
TIME_ZONE = "UTC"

# --- Logging -----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_credentials": {"()": "models_api.api.log_filters.RedactCredentials"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    # Every handler redacts: Django's own defaults give the "django" logger (with DEBUG) and
    # runserver's request log handlers of their own, which would print links and credentials
    # unfiltered; they are replaced here.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_credentials"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_credentials"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # Libraries that log request headers (and so credentials) at DEBUG stay at INFO,
        # whatever DJANGO_LOG_LEVEL says.
        **{
            name: {"level": "INFO", "propagate": True}
            for name in ("django.db.backends", "botocore", "boto3", "s3transfer", "urllib3")
        },
    },
}
