"""Settings of the CINR web service: every knob comes from an environment variable with a working default.

A fresh checkout runs with no environment at all (SQLite under var/, Redis on localhost, media under var/media).
Labs set DATABASE_URL, REDIS_URL, MEDIA_ROOT (a path every worker reaches) or CINR_S3_BUCKET, SECRET_KEY,
ALLOWED_HOSTS and DEBUG. docs/web.md lists them all.
"""

import os
from pathlib import Path

import dj_database_url

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
# The default key is only good for a machine nobody else reaches; a deployment sets SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY", "cinr-insecure-development-key-set-SECRET_KEY-in-production")
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
    "django.middleware.common.CommonMiddleware",
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
    "DEFAULT_THROTTLE_RATES": {"embed": env_str("CINR_EMBED_THROTTLE", "600/minute")},
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
    "ENUM_NAME_OVERRIDES": {
        "RunKindEnum": "cinr_web.runs.models.Run.Kind",
        "ArtifactKindEnum": "cinr_web.runs.models.Artifact.Kind",
        "TrainingKindEnum": "cinr_web.api.serializers.TRAINING_KINDS",
        "StatusEnum": "cinr_web.runs.status.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
