"""Settings of the xmailadmin panel, read from the environment.

A fresh checkout runs without any variable set: SQLite in ``var/``, an
embedded Celery broker in ``var/celery/`` (kombu's filesystem transport), and
secrets created as 0600 files in ``var/`` on first start. Production sets
``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``. docs/panel.md lists every
variable.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF, UNSAFE_HASHES
from django.utils.translation import gettext_lazy as _
from kombu import Queue

from xmailadmin.conf import (
    ConfigError,
    envbool,
    envint,
    envlist,
    envsecret,
    envstr,
    secret_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("XMAILADMIN_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)

DEBUG = envbool("DJANGO_DEBUG", False)

SECRET_KEY = envsecret("DJANGO_SECRET_KEY") or secret_file(
    VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
    raise ConfigError("DJANGO_SECRET_KEY is too short or a known default; use 50 random characters")

# The key(s) that encrypt SMTP passwords at rest. Several keys, newest first,
# separated by commas (environment) or lines (file): the first encrypts, all
# decrypt. `manage.py rotate_fernet_key` re-encrypts with the first.
_fernet_raw = envsecret("XMAILADMIN_FERNET_KEY")
# Where the keys come from, for messages that say which key is missing or wrong.
FERNET_KEY_SOURCE = "XMAILADMIN_FERNET_KEY" if _fernet_raw else str(VAR_DIR / "fernet.key")
_fernet_raw = _fernet_raw or secret_file(
    VAR_DIR / "fernet.key", lambda: Fernet.generate_key().decode()
)
FERNET_KEYS: list[str] = [k.strip() for k in _fernet_raw.replace(",", "\n").split() if k.strip()]

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")
# XMAILADMIN_HTTPS=1: the panel is reached over HTTPS through a reverse proxy that
# sets X-Forwarded-Proto (and overwrites the client's). It switches on the redirect
# to HTTPS, HSTS and secure cookies; `manage.py check --deploy` then reports nothing.
XMAILADMIN_HTTPS = envbool("XMAILADMIN_HTTPS", False)
if XMAILADMIN_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("DJANGO_SSL_REDIRECT", XMAILADMIN_HTTPS)
SECURE_HSTS_SECONDS = envint(
    "XMAILADMIN_HSTS_SECONDS", 365 * 24 * 3600 if XMAILADMIN_HTTPS else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("XMAILADMIN_HSTS_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("XMAILADMIN_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", XMAILADMIN_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = envint("XMAILADMIN_SESSION_SECONDS", 8 * 3600, minimum=60)
# Sessions live in the database and are read from this process's memory when warm.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"


def _inline_hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


# Content-Security-Policy (django-csp): scripts, styles, images only from static/
# (htmx and SortableJS are vendored), no inline script or style. The one inline event
# handler, the relay page's account select (panel/_shared.html), is allowed by its
# hash. htmx's own <style> for indicators is off (<meta name="htmx-config"> in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, UNSAFE_HASHES, _inline_hash("this.form.submit()")],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Login throttling (django-axes): after XMAILADMIN_LOGIN_FAILURES wrong passwords for one
# user name from one address, that pair is locked for XMAILADMIN_LOGIN_LOCK_MINUTES
# (on /login/ and /admin/login/); a login attempt while locked starts the time again.
# Unlock: `manage.py axes_reset_username NAME` or `manage.py axes_reset`.
AXES_FAILURE_LIMIT = envint("XMAILADMIN_LOGIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("XMAILADMIN_LOGIN_LOCK_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked user name and address
    "django.contrib.auth.backends.ModelBackend",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "xmailadmin.apps.PanelConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "xmailadmin.middleware.GermanFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked login into the lockout page
]

ROOT_URLCONF = "xmailadmin.urls"
WSGI_APPLICATION = "xmailadmin.wsgi.application"

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
                "xmailadmin.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("XMAILADMIN_DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write the same file: wait for the lock, take it up front,
    # and let readers go on while a writer works.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# German first; English by the switch in the header.
LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "xmailadmin" / "locale"]
TIME_ZONE = envstr("XMAILADMIN_TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing folder
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            # Local time in TIME_ZONE with its offset, as gunicorn's and Celery's lines.
            "()": "xmailadmin.logtime.ZonedFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("XMAILADMIN_LOG_LEVEL", "INFO")},
}

# --- Celery -----------------------------------------------------------------
# Redis when REDIS_URL is set; otherwise kombu's filesystem transport in var/,
# which needs no server (web, worker and beat share the folders).
REDIS_URL = envstr("REDIS_URL")
# The filesystem transport ignores the host, but kombu warns at every connection ("No
# hostname was supplied") when the URL names none.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
if not REDIS_URL:
    _celery_dir = VAR_DIR / "celery"
    for _sub in ("queue", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker (and beat) that lost the broker keeps trying to reconnect, however long
# Redis is away (Celery's default gives up after 100 tries and ends the worker).
# What a Redis restart lost is failed by services.expire_lost_in_broker.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A view must not hang on a dead broker: publish fails fast and says so.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_DEFAULT_QUEUE = envstr("XMAILADMIN_CELERY_QUEUE", "xmailadmin")
# The outbox's deliveries have a queue of their own (xmailadmin.celery.route); every
# worker takes both.
CELERY_TASK_QUEUES = [
    Queue(CELERY_TASK_DEFAULT_QUEUE),
    Queue(f"{CELERY_TASK_DEFAULT_QUEUE}.outbox"),
]
CELERY_TASK_ROUTES = ("xmailadmin.celery.route",)
CELERY_TASK_IGNORE_RESULT = True  # results live on model rows
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 120, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# "Test all" fans out one task per mail command: enough processes to run them at once.
CELERY_WORKER_CONCURRENCY = envint("XMAILADMIN_WORKER_CONCURRENCY", 16, minimum=1)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Seconds between scheduled probes of all mail commands; 0 turns it off.
XMAILADMIN_PROBE_INTERVAL = envint("XMAILADMIN_PROBE_INTERVAL", 3600, minimum=0)
# Seconds between scheduled health checks (a test mail through the first command of the
# order, an alert mail when it fails); 0 turns them off. While a failure lasts, the
# alert is repeated once per XMAILADMIN_HEALTH_REMIND seconds at most.
XMAILADMIN_HEALTH_INTERVAL = envint("XMAILADMIN_HEALTH_INTERVAL", 3600, minimum=0)
XMAILADMIN_HEALTH_REMIND = envint("XMAILADMIN_HEALTH_REMIND", 24 * 3600, minimum=60)
# How long one mail command may take for one test mail (passed to the transport).
XMAILADMIN_SEND_TIMEOUT = envint("XMAILADMIN_SEND_TIMEOUT", 30, minimum=1)
if XMAILADMIN_SEND_TIMEOUT >= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ConfigError("XMAILADMIN_SEND_TIMEOUT must be below CELERY_TASK_TIME_LIMIT - 5")
# Test mails per account and minute; more clicks are refused with that reason.
XMAILADMIN_TEST_MAILS_PER_MINUTE = envint("XMAILADMIN_TEST_MAILS_PER_MINUTE", 30, minimum=1)
# The diagnosis (server check, sender-domain DNS): how long each connection or lookup may
# wait, and the name server the DNS check asks ("IP" or "IP:PORT"; empty: the system's,
# /etc/resolv.conf).
XMAILADMIN_CHECK_TIMEOUT = envint("XMAILADMIN_CHECK_TIMEOUT", 10, minimum=1)
XMAILADMIN_DNS_NAMESERVER = envstr("XMAILADMIN_DNS_NAMESERVER", "")
# The largest support bundle that may be uploaded (bytes); a real one is well under 1 MB.
XMAILADMIN_BUNDLE_MAX_BYTES = envint("XMAILADMIN_BUNDLE_MAX_BYTES", 20_000_000, minimum=1000)
# The outbox (outbox/spool.py): where xmail-sendmail drops messages for delivery.
XMAILADMIN_OUTBOX = envstr("XMAILADMIN_OUTBOX", "/var/spool/xmailadmin/outbox")
# Django's own mail (send_mail, mail_admins) goes into the outbox like any
# application's, delivered through the preferred order.
EMAIL_BACKEND = "xmailadmin.mail_backend.OutboxBackend"
# Django's default, webmaster@localhost, most servers refuse. The host's name, as
# xmail-sendmail takes it (gethostname: getfqdn could wait on DNS at every start).
DEFAULT_FROM_EMAIL = envstr("DJANGO_DEFAULT_FROM_EMAIL", f"xmailadmin@{socket.gethostname()}")
# The retry schedule, as postfix's (minimal_backoff_time, maximal_backoff_time,
# maximal_queue_lifetime): the wait doubles from the first to the longest; a message
# still not delivered when its lifetime ends is bounced to its sender.
XMAILADMIN_OUTBOX_MIN_BACKOFF = envint("XMAILADMIN_OUTBOX_MIN_BACKOFF", 300, minimum=1)
XMAILADMIN_OUTBOX_MAX_BACKOFF = envint("XMAILADMIN_OUTBOX_MAX_BACKOFF", 4000, minimum=1)
XMAILADMIN_OUTBOX_LIFETIME = envint("XMAILADMIN_OUTBOX_LIFETIME", 5 * 86400, minimum=1)
# The worker looks into the outbox this often even when no submitter woke it.
XMAILADMIN_OUTBOX_SCAN = envint("XMAILADMIN_OUTBOX_SCAN", 30, minimum=1)
# Mail commands run at once by one delivery (each a process mostly waiting on the server).
XMAILADMIN_OUTBOX_CONCURRENCY = envint("XMAILADMIN_OUTBOX_CONCURRENCY", 4, minimum=1)
# A message waiting longer than this is a warning on the dashboard.
XMAILADMIN_OUTBOX_WARN_AGE = envint("XMAILADMIN_OUTBOX_WARN_AGE", 1800, minimum=1)

# The worker writes a heartbeat row this often; three missed beats = no worker.
XMAILADMIN_HEARTBEAT_SECONDS = envint("XMAILADMIN_HEARTBEAT_SECONDS", 5, minimum=1)

# The relays the "Relay server" page checks, configures and tests, and the postfix and
# exim rows of the overview follow. Empty: the system's own (/etc/postfix, Debian's
# exim4). Set them for a postfix with another configuration directory (postfix -c DIR)
# or a private copy of exim (docs/relays.md).
XMAILADMIN_POSTFIX_CONFIG_DIR = envstr("XMAILADMIN_POSTFIX_CONFIG_DIR")
XMAILADMIN_EXIM_BINARY = envstr("XMAILADMIN_EXIM_BINARY")
XMAILADMIN_EXIM_CONF_DIR = envstr("XMAILADMIN_EXIM_CONF_DIR")
XMAILADMIN_EXIM_CONFIG_FILE = envstr("XMAILADMIN_EXIM_CONFIG_FILE")
XMAILADMIN_EXIM_UPDATE_CONF = envstr("XMAILADMIN_EXIM_UPDATE_CONF")
for _name in (
    "XMAILADMIN_POSTFIX_CONFIG_DIR",
    "XMAILADMIN_EXIM_BINARY",
    "XMAILADMIN_EXIM_CONF_DIR",
    "XMAILADMIN_EXIM_CONFIG_FILE",
    "XMAILADMIN_EXIM_UPDATE_CONF",
):
    if globals()[_name] and not globals()[_name].startswith("/"):
        raise ConfigError(f"{_name}={globals()[_name]!r}: expected an absolute path")

CELERY_BEAT_SCHEDULE = {
    "expire-stale-rows": {
        "task": "xmailadmin.tasks.expire_stale",
        "schedule": timedelta(seconds=60),
    },
}
if XMAILADMIN_HEALTH_INTERVAL:
    CELERY_BEAT_SCHEDULE["health-check"] = {
        "task": "xmailadmin.tasks.scheduled_health",
        "schedule": timedelta(seconds=XMAILADMIN_HEALTH_INTERVAL),
    }
if XMAILADMIN_PROBE_INTERVAL:
    CELERY_BEAT_SCHEDULE["probe-all"] = {
        "task": "xmailadmin.tasks.scheduled_probe",
        "schedule": timedelta(seconds=XMAILADMIN_PROBE_INTERVAL),
    }
