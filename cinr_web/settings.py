"""Settings of the CINR web service: every knob comes from an environment variable with a working default.

A fresh checkout runs with no environment at all (SQLite under var/, Redis on localhost, media under var/media).
Labs set DATABASE_URL, REDIS_URL, MEDIA_ROOT (a path every worker reaches) or CINR_S3_BUCKET, SECRET_KEY,
ALLOWED_HOSTS and DEBUG. docs/web.md lists them all.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# No built-in production secret: with DEBUG off a missing SECRET_KEY stops start-up (make demo keeps a generated one in
# var/secret-key.txt, the tests set their own). Only DEBUG runs fall back to this well-known development key.
DEVELOPMENT_SECRET_KEY = "cinr-insecure-development-key-for-DEBUG-only"
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
elif not SECRET_KEY or (SECRET_KEY == DEVELOPMENT_SECRET_KEY and not DEBUG):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set (or is the development key) and DEBUG is off: set SECRET_KEY to a long random value, "
        "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))', or DEBUG=1 on a development machine")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "cinr_web.datasets",
    "cinr_web.inrsets",
    "cinr_web.runs",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "cinr_web.slashes.AppendSlashMiddleware",  # CommonMiddleware, redirecting a missing "/" with 308
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cinr_web.urls"
WSGI_APPLICATION = "cinr_web.wsgi.application"
ASGI_APPLICATION = "cinr_web.asgi.application"

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

# -- database -----------------------------------------------------------------------------------------------------
VAR_DIR = Path(env_str("CINR_VAR_DIR", str(BASE_DIR / "var")))
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'cinr.sqlite3'}"),
        conn_max_age=env_int("CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A web process and workers share the file: take the write lock when a transaction starts (IMMEDIATE) and wait
    # for it, instead of failing with "database is locked" when a reading transaction later wants to write.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# -- files --------------------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Serve /static/ from the ASGI app itself (apps' static folders, no collectstatic). Fine for a lab; a large
# deployment puts a web server in front and turns this off.
CINR_SERVE_STATIC = env_bool("CINR_SERVE_STATIC", True)

S3_BUCKET = env_str("CINR_S3_BUCKET", "")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if S3_BUCKET:
    # Every worker on every machine must reach the artifacts: S3-compatible storage through django-storages.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("CINR_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("CINR_S3_REGION", "") or None,
            "location": env_str("CINR_S3_PREFIX", "cinr"),
            "file_overwrite": False,
            "default_acl": None,
        },
    }

# Upper bound of one upload (image, zip, weight file), in bytes.
CINR_MAX_UPLOAD_BYTES = env_int("CINR_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CINR_MAX_UPLOAD_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("CINR_MAX_UPLOAD_FILES", 10000)

# -- input bounds: every input is bounded before work is done (docs/api.md, "Limits") ----------------------------
# Architectures sent to the API (weight files, JSON specs, new INR sets), checked with arithmetic before anything is
# allocated: a spec of a few bytes may claim millions of layers.
CINR_MAX_SPEC_OUT_DIM = env_int("CINR_MAX_SPEC_OUT_DIM", 4)
CINR_MAX_SPEC_HIDDEN = env_int("CINR_MAX_SPEC_HIDDEN", 1024)
CINR_MAX_SPEC_LAYERS = env_int("CINR_MAX_SPEC_LAYERS", 32)  # SIREN
CINR_MAX_SPEC_FILTERS = env_int("CINR_MAX_SPEC_FILTERS", 32)  # MFN
CINR_MAX_SPEC_PARAMS = env_int("CINR_MAX_SPEC_PARAMS", 1_000_000)  # per INR
# Image uploads, read from the files' headers before any pixel is decoded (a few KB of PNG can hold 4096 x 4096).
CINR_MAX_IMAGE_PIXELS = env_int("CINR_MAX_IMAGE_PIXELS", 1024 * 1024)  # per image
CINR_MAX_UPLOAD_PIXELS = env_int("CINR_MAX_UPLOAD_PIXELS", 1 << 24)  # all images of one upload
CINR_MAX_ZIP_MEMBERS = env_int("CINR_MAX_ZIP_MEMBERS", 50_000)
CINR_MAX_ZIP_BYTES = env_int("CINR_MAX_ZIP_BYTES", 512 * 1024 * 1024)  # uncompressed, all members
# JSON request bodies: size and nesting, checked before the decoder (which recurses per level) sees them.
CINR_MAX_JSON_BYTES = env_int("CINR_MAX_JSON_BYTES", 64 * 1024 * 1024)
CINR_MAX_JSON_DEPTH = env_int("CINR_MAX_JSON_DEPTH", 16)
# Characters of one message in an error body (and items of one list): errors say what is wrong, briefly.
CINR_MAX_ERROR_CHARS = env_int("CINR_MAX_ERROR_CHARS", 1000)

# -- CINR work ----------------------------------------------------------------------------------------------------
CINR_DEVICE = env_str("CINR_DEVICE", "auto")
os.environ.setdefault("CINR_DEVICE", CINR_DEVICE)  # inr.default_device() reads the environment
# A fit of more images than this is split into chunk tasks that several GPU workers share.
CINR_FIT_CHUNK_IMAGES = env_int("CINR_FIT_CHUNK_IMAGES", 1000)
# A running run whose heartbeat is older than this is stale (its worker died) and may be re-run.
CINR_STALE_SECONDS = env_int("CINR_STALE_SECONDS", 300)
# Every worker process sweeps this often (and once at start): stale runs and runs whose messages the broker lost are
# sent again (cinr_web.runs.recovery). 0 turns the sweeper off.
CINR_SWEEP_SECONDS = env_int("CINR_SWEEP_SECONDS", 60)

# -- Redis: Celery broker and Channels layer ----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Prefix of every Redis key this deployment uses, so several deployments (or test sessions) share one Redis.
REDIS_KEY_PREFIX = env_str("CINR_REDIS_PREFIX", "")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py's 5 s socket timeout equals channels_redis's blocking read, so idle websockets would drop
        # every 5 s; a longer timeout keeps them open.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": f"{REDIS_KEY_PREFIX}asgi", "capacity": 1000, "expiry": 60,
        },
    }
}

# Django's cache (the model API's throttle counts) is in Redis too: with a per-process cache, each of a deployment's
# web processes would allow the whole rate on its own.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{REDIS_KEY_PREFIX}cache",
        # an unreachable Redis fails a throttle check within a second (and the throttle then lets the request pass)
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX} if REDIS_KEY_PREFIX else {}
CELERY_TASK_ALWAYS_EAGER = False

# -- REST API (web-api edits this block) --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated request then gets 401 with "WWW-Authenticate: Token" (scripts), not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "cinr_web.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"embed": env_str("CINR_EMBED_THROTTLE", "600/minute"),
                               "upload": env_str("CINR_UPLOAD_THROTTLE", "30/hour"),
                               "try": env_str("CINR_TRY_THROTTLE", "30/minute")},
    # JSON bodies bounded in size and depth (cinr_web.api.parsers); error bodies bounded (cinr_web.api.errors).
    "DEFAULT_PARSER_CLASSES": ["cinr_web.api.parsers.BoundedJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "EXCEPTION_HANDLER": "cinr_web.api.errors.bounded_exception_handler",
}

# -- OpenAPI (web-api edits this block) ---------------------------------------------------------------------------
SPECTACULAR_SETTINGS = {
    "TITLE": "CINR API",
    "DESCRIPTION": "Datasets, INR sets, training runs and the model API of CINR.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # ids in paths: at most 18 digits (cinr_web.converters), so they fit the database's 64-bit integers
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
    "ENUM_NAME_OVERRIDES": {
        "RunKindEnum": "cinr_web.runs.models.Run.Kind",
        "ArtifactKindEnum": "cinr_web.runs.models.Artifact.Kind",
        "TrainingKindEnum": "cinr_web.api.serializers.TRAINING_KINDS",
        "StatusEnum": "cinr_web.runs.status.Status",
    },
}

# -- TLS: behind HTTPS, CINR_TLS=1 (docs/web.md, "Production") ----------------------------------------------------
# HTTPS only: redirect plain HTTP, secure cookies, HSTS. `manage.py check --deploy` is clean with DEBUG off, a
# SECRET_KEY, CINR_TLS=1 and ALLOWED_HOSTS set.
CINR_TLS = env_bool("CINR_TLS", False)
if CINR_TLS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("CINR_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CINR_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CINR_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:  # asking browsers to preload the domain is the site owner's decision, not a default
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from clients): trust that header.
if env_bool("CINR_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
