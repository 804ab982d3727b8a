"""Django settings, from the environment the ``ratepad server`` CLI sets.

* ``RATEPAD_DB``: the ``--db`` URL (default: an SQLite file in the current directory).
* ``RATEPAD_SECRET_KEY``: signs sessions and CSRF tokens; every instance behind one load
  balancer needs the same. Without it, ``ratepad server`` generates one once into
  ``ratepad-server.secret`` in the current directory (mode 0600) and uses that.
* ``RATEPAD_ALLOWED_HOSTS``: comma-separated host names the server answers to (default
  ``localhost,127.0.0.1,[::1]``; a leading dot matches subdomains, ``*`` any name).
* ``RATEPAD_SESSION_HOURS`` (8): a web login lasts this long;
  ``RATEPAD_SESSION_AT_BROWSER_CLOSE`` (1; 0: no) also ends it when the browser closes.
* ``RATEPAD_HSTS_SECONDS`` (31536000; 0: none): HSTS sent on HTTPS answers.
* ``RATEPAD_WEBHOOK_ALLOW``: the hosts alert webhooks may call (see ``alerts/webhooks.py``).
* ``RATEPAD_EXPORT_MAX_ROWS`` (100000): the most ratings one export holds (more: 400).
* ``RATEPAD_PDF_FONT`` (``/usr/share/fonts/truetype/wqy/wqy-microhei.ttc``, Debian's
  fonts-wqy-microhei): the TrueType font (.ttf/.ttc) embedded, subset, in the monthly PDF.
* ``RATEPAD_ACCEPT_PAST_DAYS`` (730), ``RATEPAD_ACCEPT_FUTURE_HOURS`` (24): the times ingest
  accepts, around the server's clock.
* ``RATEPAD_LIVE_MAX_STREAMS`` (2000), ``RATEPAD_LIVE_MAX_PER_USER`` (8): open live streams
  a server process holds, in all and per user; one more answers 429.
* ``RATEPAD_REQUEST_READ_TIMEOUT`` (20): seconds a client has to send a whole request (head
  and body) before its connection is closed (``asgi.py``).
* ``RATEPAD_TRUSTED_PROXY``: set (by ``run --trusted-proxy``) when a reverse proxy terminates
  TLS; requests then count as HTTPS when it says so in ``X-Forwarded-Proto``.
* ``RATEPAD_DB_REPLICA``: the ``--db-replica`` URL, a hot standby the reports read from
  (``dbrouter.py``); ``RATEPAD_REPLICA_LAG_WARN_S`` (60): the lag the report page tells of.
* ``RATEPAD_LOG_FORMAT`` (text; json), ``RATEPAD_METRICS_ALLOW`` (loopback),
  ``RATEPAD_METRICS_TOKEN``, ``PROMETHEUS_MULTIPROC_DIR``: logs and ``/metrics`` (``ops/``).
* ``RATEPAD_SMTP`` (``localhost:25``): the mail relay alerts are sent through, ``host:port``;
  ``RATEPAD_SMTP_USER`` and ``RATEPAD_SMTP_PASSWORD``: its login (none by default);
  ``RATEPAD_SMTP_TLS`` (unset; ``1``: STARTTLS); ``RATEPAD_MAIL_FROM``
  (``ratepad@localhost``): the sender of alert e-mails.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import django_stubs_ext
from django.utils.translation import gettext_lazy as _

from .dbrouter import replica_databases
from .dburl import parse_db_url
from .envconf import integer, number, parsed
from .ops.config import log_format, logging_config, metrics_dir, networks


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(text)
    return port


django_stubs_ext.monkeypatch()  # ModelAdmin[Model] and friends at run time, as typed


DEBUG = False
# set by the CLI (from ./ratepad-server.secret if not in the environment); a process started
# otherwise (a type checker, a test reading the URL map) gets a throwaway key
SECRET_KEY = os.environ.get("RATEPAD_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("RATEPAD_ALLOWED_HOSTS",
                  "localhost,127.0.0.1,[::1]").split(",") if h.strip()]  # fmt: skip
if os.environ.get("RATEPAD_TRUSTED_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

DATABASES = {"default": parse_db_url(os.environ.get("RATEPAD_DB"))}
DATABASES.update(parsed("RATEPAD_DB_REPLICA", "", replica_databases, "postgresql://user@host/db"))
DATABASE_ROUTERS = ["ratepad_server.dbrouter.ReportsFromReplica"]  # reports from the replica
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "ratepad_server.accounts.apps.AdminConfig",  # Django's admin, its login throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ratepad_server.org",
    "ratepad_server.ingest",
    "ratepad_server.rollups",
    "ratepad_server.live",
    "ratepad_server.api",
    "ratepad_server.audit",
    "ratepad_server.accounts.apps.AccountsConfig",
    "ratepad_server.reports",
    "ratepad_server.alerts",
    "ratepad_server.casework",  # after alerts: its ingest receiver runs second
    "ratepad_server.surveys",  # questionnaires and return visits (before web: its catalog)
    "ratepad_server.web",
    "ratepad_server.ops",  # /healthz, /readyz, /metrics; JSON logs
]
MIDDLEWARE = [
    "ratepad_server.ops.endpoints.OpsEndpoints",  # first: no session, locale or host check
    "django.middleware.security.SecurityMiddleware",
    "ratepad_server.web.security.SecurityHeaders",  # CSP; Secure cookies on HTTPS
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "ratepad_server.web.security.ControlCharacters",  # %00 in a URL: 400, in the reader's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ratepad_server.web.security.BadRequestPage",
    "ratepad_server.dbfail.DatabaseUnavailable",  # the database away: 503 + Retry-After
]
ROOT_URLCONF = "ratepad_server.urls"
WSGI_APPLICATION = "ratepad_server.wsgi.application"
ASGI_APPLICATION = "ratepad_server.asgi.application"  # what ``ratepad server run`` serves
# open live streams (/api/v1/live, the wall's events): more answer 429
RATEPAD_LIVE_MAX_STREAMS = integer("RATEPAD_LIVE_MAX_STREAMS", 2000, 1, 1_000_000)
RATEPAD_LIVE_MAX_PER_USER = integer("RATEPAD_LIVE_MAX_PER_USER", 8, 1, 10_000)
# seconds for a request's head and body to arrive (asgi.py closes the connection after)
RATEPAD_REQUEST_READ_TIMEOUT = number("RATEPAD_REQUEST_READ_TIMEOUT", 20, 1, 3600)
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
                "django.template.context_processors.i18n",
                "ratepad_server.web.context.web",
            ]
        },
    }
]

# Argon2 (argon2-cffi) first: new passwords are hashed with it, older hashes still check
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# one throttle for every login: the web's, the admin pages', the API's token call
AUTHENTICATION_BACKENDS = ["ratepad_server.accounts.backends.ThrottledModelBackend"]
_VALIDATION = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [  # every way a password is set: web, admin pages, CLI
    {"NAME": _VALIDATION + "UserAttributeSimilarityValidator"},
    {"NAME": _VALIDATION + "MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": _VALIDATION + "CommonPasswordValidator"},
    {"NAME": _VALIDATION + "NumericPasswordValidator"},
    {"NAME": "ratepad_server.accounts.passwords.NotTheInitialPassword"},
    {"NAME": "ratepad_server.accounts.passwords.MaximumLength"},
]
CSRF_FAILURE_VIEW = "ratepad_server.web.errors.csrf_failure"  # in the layout, translated
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
SESSION_COOKIE_HTTPONLY = True
# a bank's working day, not Django's two weeks; Secure cookies on HTTPS: web/security.py
SESSION_COOKIE_AGE = int(number("RATEPAD_SESSION_HOURS", 8, 0.1, 24 * 30) * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = os.environ.get("RATEPAD_SESSION_AT_BROWSER_CLOSE", "1") != "0"
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# sent by SecurityMiddleware on HTTPS answers only (directly or by the trusted proxy)
SECURE_HSTS_SECONDS = integer("RATEPAD_HSTS_SECONDS", 31_536_000, 0, 2 * 31_536_000)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# alerts by e-mail: RATEPAD_SMTP=host:port (no TLS on a loopback relay; RATEPAD_SMTP_TLS=1)
_smtp_host, _sep, _smtp_port = os.environ.get("RATEPAD_SMTP", "localhost:25").rpartition(":")
EMAIL_HOST = _smtp_host or "localhost"
EMAIL_PORT = parsed("RATEPAD_SMTP", "localhost:25", lambda v: _port(v.rpartition(":")[2] or "25"),
                    "HOST:PORT")  # fmt: skip
EMAIL_HOST_USER = os.environ.get("RATEPAD_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("RATEPAD_SMTP_PASSWORD", "")
EMAIL_USE_TLS = bool(os.environ.get("RATEPAD_SMTP_TLS"))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("RATEPAD_MAIL_FROM", "ratepad@localhost")
# a ratings export holds at most this many rows (more: 400, choose a shorter period)
EXPORT_MAX_ROWS = integer("RATEPAD_EXPORT_MAX_ROWS", 100_000, 1, 10_000_000)
# the monthly PDF's font, with Chinese characters (web/monthly.py; missing: the PDF is refused)
PDF_FONT = os.environ.get("RATEPAD_PDF_FONT", "").strip() or (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
)
# alert webhooks: the hosts and networks they may call (alerts/webhooks.py); none by default
WEBHOOK_ALLOW = os.environ.get("RATEPAD_WEBHOOK_ALLOW", "")

# i18n: Simplified Chinese first (the product's users), English second
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
LOCALE_PATHS = [Path(__file__).resolve().parent / "locale"]

STATIC_URL = "static/"
# whitenoise serves the admin's files from the installed apps (no collectstatic, no CDN)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# an upload batch is at most this big (the agent sends 500 ratings, about 150 kB)
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# ingest accepts rating, prompt, session and device times from this many days before to this
# many hours after the server's clock; other times are kept in quarantine (ingest/bounds.py)
ACCEPT_PAST_DAYS = integer("RATEPAD_ACCEPT_PAST_DAYS", 730, 1, 36_500)
ACCEPT_FUTURE_HOURS = integer("RATEPAD_ACCEPT_FUTURE_HOURS", 24, 0, 24 * 366)

LOGGING = logging_config(parsed("RATEPAD_LOG_FORMAT", "text", log_format, "text or json"))
# /metrics: who may read it (ops/endpoints.py); the directory the host's processes share
METRICS_ALLOW = parsed("RATEPAD_METRICS_ALLOW", "127.0.0.1,::1", networks,
                       "addresses or networks, comma-separated, or *")  # fmt: skip
METRICS_TOKEN = os.environ.get("RATEPAD_METRICS_TOKEN", "").strip()
parsed("PROMETHEUS_MULTIPROC_DIR", "", metrics_dir, "a directory the server can write")
