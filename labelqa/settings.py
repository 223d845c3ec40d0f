"""Django settings for labelqa: every value comes from the environment (see README, "Configuration")."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from labelqa.log_filters import client_errors_without_traceback

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Production means HTTPS behind a proxy: secure cookies, HSTS, redirects (see "Security" below).
# Off by default so that development and the test suite keep working over plain HTTP.
LABELQA_PRODUCTION = env.bool("LABELQA_PRODUCTION", default=False)
_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET)
if SECRET_KEY == _DEV_SECRET and LABELQA_PRODUCTION:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when LABELQA_PRODUCTION=true.")
_THIS_MACHINE = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=_THIS_MACHINE)
# The development key is public: with it, anyone could forge the signed values (password reset links, messages)
# of a site that others can reach, production or not.
if SECRET_KEY == _DEV_SECRET and set(ALLOWED_HOSTS) - {*_THIS_MACHINE, "testserver"}:
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY must be set when DJANGO_ALLOWED_HOSTS names other hosts than this machine "
        f"({', '.join(ALLOWED_HOSTS)}): the development key is public."
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "labelqa.apps.LabelqaAdminConfig",  # django.contrib.admin with the site's login and 403s
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "labelqa.catalog",
    "labelqa.review",
    "labelqa.analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After the login check (anonymous requests go to the login page) and CSRF's (which reads the form first).
    "labelqa.middleware.RejectNulCharacters",
    # Last, as django-axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "labelqa.urls"
WSGI_APPLICATION = "labelqa.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "labelqa.roles.role_flags",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'labelqa.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Zero-config default: the database file lives under var/, which a fresh clone lacks.
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
# Keep connections between requests: a new PostgreSQL connection costs more than a whole grid request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: it refuses locked-out users before ModelBackend checks the password.
AUTHENTICATION_BACKENDS = [
    "labelqa.auth_backends.RequestOptionalAxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Image storage: local files by default, S3 (or any S3-compatible server) through django-storages.
LABELQA_STORAGE = env.str("LABELQA_STORAGE", default="local")
MEDIA_ROOT = env.path("LABELQA_MEDIA_ROOT", default=VAR_DIR / "media")
if LABELQA_STORAGE == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
elif LABELQA_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
else:
    raise ImproperlyConfigured(f"LABELQA_STORAGE must be 'local' or 's3', not {LABELQA_STORAGE!r}.")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)

DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
LABELQA_MAX_UPLOAD_BYTES = env.int("LABELQA_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)

# Directories and s3:// prefixes datasets may read images from (comma-separated); empty allows any. An admin names
# the images root in a browser, so without it an admin account can show any image file the server can read.
LABELQA_IMAGE_ROOTS = env.list("LABELQA_IMAGE_ROOTS", default=[])

LABELQA_MODEL = env.str("LABELQA_MODEL", default="efficientnet-lite0")
# Directories that TorchScript files named on the classify form or command may come from (comma-separated); empty
# allows any file. The built-in model and LABELQA_MODEL, which whoever runs the server sets, are always allowed.
LABELQA_MODEL_DIRS = env.list("LABELQA_MODEL_DIRS", default=[])
LABELQA_DEVICE = env.str("LABELQA_DEVICE", default="auto")
LABELQA_LEASE_TTL_SECONDS = env.int("LABELQA_LEASE_TTL_SECONDS", default=600)
# With several processes, a shared cache (redis://host:6379/1) makes the re-rank throttle hold per deployment
# rather than per worker process; the default is each process's own memory.
CACHES = {"default": env.cache_url("LABELQA_CACHE_URL", default="locmemcache://")}
if "redis" in CACHES["default"]["BACKEND"]:
    # As for the broker: a Redis that is down or frozen costs a request a moment, never a hang.
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 0.5, "socket_timeout": 2.0})

# Celery: a broker URL means real workers; none means tasks run in-process (and we say so).
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Acknowledgement and retries are set per task in worker/tasks.py, the one place that knows them.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {"worker.tasks.classify_run": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A dead broker must not stall a reviewer's submit: votes are already saved in PostgreSQL and the rows stay
# marked stale, so a publish gives up quickly (one retry, which also replaces a pooled connection that went
# stale when Redis restarted) and the periodic sweep catches the tallies up. See README, "Failure behaviour".
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": env.int("LABELQA_BROKER_PUBLISH_RETRIES", default=1),
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.1,
}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("LABELQA_BROKER_CONNECT_TIMEOUT", default=0.5)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    # A broker that accepts connections but never answers (frozen, half-open) would otherwise block forever.
    "socket_timeout": env.float("LABELQA_BROKER_SOCKET_TIMEOUT", default=2.0),
    # An unacknowledged task (its worker was SIGKILLed) goes back to the queue after this many seconds. It must
    # exceed the longest task (classify_run may run 6 h 5 min) or a running task would be handed out twice.
    "visibility_timeout": env.int("LABELQA_BROKER_VISIBILITY_TIMEOUT", default=22_200),
}
# Images a thumbnail task checks before it queues the rest: a million-image import then holds no worker for long
# while uploads and aggregation wait.
LABELQA_THUMBNAILS_PER_TASK = env.int("LABELQA_THUMBNAILS_PER_TASK", default=2000)
# Tallies left stale while the broker was down are recomputed by this sweep (run `celery beat`, or a worker
# with -B). 0 turns the schedule off.
LABELQA_TALLY_SWEEP_SECONDS = env.float("LABELQA_TALLY_SWEEP_SECONDS", default=60)
CELERY_BEAT_SCHEDULE = (
    {
        "sweep-stale-tallies": {
            "task": "worker.tasks.sweep_stale_tallies",
            "schedule": LABELQA_TALLY_SWEEP_SECONDS,
            # Sweeps queued while no worker runs are dropped rather than piling up: the next one does it all.
            "options": {"expires": LABELQA_TALLY_SWEEP_SECONDS},
        }
    }
    if LABELQA_TALLY_SWEEP_SECONDS > 0
    else {}
)

# Security (DESIGN.md, "Who uses it": anonymous users see only the login page).
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if LABELQA_PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy, e.g. DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (only when the proxy always sets or strips that header).
_proxy_ssl_header = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)

# Content Security Policy (django-csp): our pages load only our own static files; no inline script or style.
# Images are our own views (thumbnails, originals, analytics PNGs) plus data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Login throttling (django-axes): 5 failures for one user name from one address lock it out for 15 minutes;
# a successful login resets the count.
AXES_ENABLED = env.bool("LABELQA_AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
# The client address: REMOTE_ADDR unless a trusted proxy count is given (X-Forwarded-For is otherwise spoofable).
AXES_IPWARE_PROXY_COUNT = env.int("LABELQA_TRUSTED_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
)

# Unset, libraries log warnings and labelqa its own progress too (INFO); set, it is the level for both.
LABELQA_LOG_LEVEL = env.str("LABELQA_LOG_LEVEL", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "filters": {
        "client_errors_brief": {
            "()": "django.utils.log.CallbackFilter",
            "callback": client_errors_without_traceback,
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["client_errors_brief"]}
    },
    "root": {"handlers": ["console"], "level": LABELQA_LOG_LEVEL or "WARNING"},
    "loggers": {"labelqa": {"handlers": ["console"], "level": LABELQA_LOG_LEVEL or "INFO", "propagate": False}},
}
