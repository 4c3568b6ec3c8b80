"""Every knob comes from the environment (names in DESIGN.md "Configuration").

With nothing set this runs as a zero-setup dev app: a SQLite file under var/, Celery on a
filesystem broker in var/celery (no server needed), and every gateway "not configured".
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="") or DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    # Sign-in lockout after repeated failures, for every login form (admin, portal).
    "axes",
    # Staff two-factor sign-in with authenticator apps (emr/staff_two_factor.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "audit",
    "emr",
    "orders",
    "billing",
    "subscriptions",
    "emr.workflows",
    "emr.support",
    "emr.portal",
    "integrations.beluga",
    "integrations.pharmacy",
]

MIDDLEWARE = [
    # First: every answer (refusals of the middleware below included) is timed and logged.
    "emr.kernel.request_logging.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "emr.kernel.request_guard.RequestGuardMiddleware",
    "csp.middleware.CSPMiddleware",
    "emr.kernel.security_headers.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "emr.kernel.session_limits.SessionLimitsMiddleware",
    "emr.staff_two_factor.TwoFactorRequiredMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its refusal page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # Production serves the collected static files itself (gunicorn has no static handler).
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "emr.urls"
WSGI_APPLICATION = "emr.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'emr.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file in dev: take the write lock when a transaction
    # starts (IMMEDIATE) and wait for it, instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database host that stops answering fails a request (and /readyz) in seconds, not hangs.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Browser security headers ------------------------------------------------------------
# Scripts only from our own static files, never inline: an injected <script> does not run. The
# admin and the API docs pass as they are; ReDoc and Swagger UI set element styles at run time,
# hence inline styles (not scripts) are allowed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), usb=(), interest-cohort=()"

# --- Sign-in ----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Patients sign in to the portal with their email (emr/portal/backends.py).
    "emr.portal.backends.PatientEmailBackend",
]
# After this many failed sign-ins, the account and the address are each refused for a while.
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The portal counts failures per email typed (patients sign in with it) and answers a lockout
# with its own page; the admin keeps the template above.
AXES_USERNAME_CALLABLE = "emr.portal.backends.lockout_username"
AXES_LOCKOUT_CALLABLE = "emr.portal.views.locked_out"
# Its log lines name the account, and a patient's account is their email: the attempts are kept
# in its tables (reviewable in the admin), not in the logs.
AXES_VERBOSE = False
# Two-factor sign-in (an authenticator app's code): required of superusers and these groups,
# everywhere but a developer's machine; a clinic may add "CS".
STAFF_TWO_FACTOR_REQUIRED = env.bool("STAFF_TWO_FACTOR_REQUIRED", default=not DEBUG)
STAFF_TWO_FACTOR_GROUPS = env.list("STAFF_TWO_FACTOR_GROUPS", default=["Billing admin"])
OTP_TOTP_ISSUER = "EMR billing"
# Automatic logoff: idle, and absolute (emr/kernel/session_limits.py).
IDLE_LOGOFF_MINUTES = env.int("IDLE_LOGOFF_MINUTES", default=15)
SESSION_MAX_HOURS = env.int("SESSION_MAX_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600
# Patient portal links: an invitation to set a password, and a password reset. Each works once
# (it signs the password hash, which setting a password changes) and expires.
PORTAL_INVITE_HOURS = env.int("PORTAL_INVITE_HOURS", default=72)
# How long before a session package expires `package.expiring` is emitted for the automations.
PACKAGE_EXPIRY_NOTICE_DAYS = env.int("PACKAGE_EXPIRY_NOTICE_DAYS", default=14)
PORTAL_PASSWORD_RESET_MINUTES = env.int("PORTAL_PASSWORD_RESET_MINUTES", default=60)
# Django's own bound on every such token; each portal link then checks its own, shorter life.
PASSWORD_RESET_TIMEOUT = max(PORTAL_INVITE_HOURS * 3600, PORTAL_PASSWORD_RESET_MINUTES * 60)
# The dashboard warns about a saved card that expires within this many days.
PORTAL_CARD_EXPIRY_WARNING_DAYS = env.int("PORTAL_CARD_EXPIRY_WARNING_DAYS", default=45)
# Password-reset requests answered with an email, per email and per address, in each window:
# past them the form answers the same and sends nothing (no mailbox flood, no account probing).
PORTAL_PASSWORD_RESET_PER_EMAIL = env.int("PORTAL_PASSWORD_RESET_PER_EMAIL", default=3)
PORTAL_PASSWORD_RESET_PER_ADDRESS = env.int("PORTAL_PASSWORD_RESET_PER_ADDRESS", default=10)
PORTAL_PASSWORD_RESET_WINDOW_MINUTES = env.int("PORTAL_PASSWORD_RESET_WINDOW_MINUTES", default=60)

# --- The clinic, as receipts and patient emails name it ---------------------------------------
CLINIC_NAME = env.str("CLINIC_NAME", default="Demo Telehealth Clinic")
CLINIC_ADDRESS = env.str("CLINIC_ADDRESS", default="100 Example Street, Springfield, ST 00000")
CLINIC_EMAIL = env.str("CLINIC_EMAIL", default="support@clinic.example")
CLINIC_PHONE = env.str("CLINIC_PHONE", default="+1 555 0100")
CLINIC_TAX_ID = env.str("CLINIC_TAX_ID", default="")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# An audited record changes through its service, never by restoring an old row: simple-history
# offers no "revert" on any history page.
SIMPLE_HISTORY_REVERT_DISABLED = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "admin:login"

# --- Redis: Celery broker and cache -------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Dev only: a broker on disk so that web, worker and beat (separate processes) share queues
    # without any server.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    # The transport does not create its folders, and any process may publish first.
    for folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
    # On disk, not per process: web, worker and beat share lockout counters, throttles and the
    # beat heartbeat /readyz reads, as they share Redis in production.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Subscriptions --------------------------------------------------------------------------
# Days after each failed recovery attempt before the next one; then the invoice waits for CS.
RECOVERY_RETRY_DAYS = env.list("RECOVERY_RETRY_DAYS", cast=int, default=[1, 3, 7])
# How many days ahead `subscription.upcoming_renewal` is emitted.
UPCOMING_RENEWAL_DAYS = env.int("UPCOMING_RENEWAL_DAYS", default=3)

# Tamper evidence (audit/chain.py): where the daily digest of the chain's head is appended (an
# auditor copies it elsewhere), and how long after its time a history row may still commit
# (a slow transaction) and be sealed in order rather than reported as inserted behind our back.
AUDIT_DIGEST_DIR = Path(env.str("AUDIT_DIGEST_DIR", default=str(BASE_DIR / "var/audit-digests")))
AUDIT_CHAIN_GRACE_SECONDS = env.int("AUDIT_CHAIN_GRACE_SECONDS", default=900)

# --- Payment gateways and integrations -----------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_MERCHANT_ACCOUNT = env.str("STRIPE_MERCHANT_ACCOUNT", default="")
# Card entry in the patient's browser goes through the gateway's own script, so this server
# only ever receives a token; the portal's CSP allows that script's origin on its card pages.
# Dev and tests point these at the local fakes' stand-ins.
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")

NMI_SECURITY_KEY = env.str("NMI_SECURITY_KEY", default="")
NMI_API_URL = env.str("NMI_API_URL", default="https://secure.nmi.com/api/transact.php")
NMI_QUERY_URL = env.str("NMI_QUERY_URL", default="https://secure.nmi.com/api/query.php")
NMI_WEBHOOK_SIGNING_KEY = env.str("NMI_WEBHOOK_SIGNING_KEY", default="")
NMI_MERCHANT_ACCOUNT = env.str("NMI_MERCHANT_ACCOUNT", default="")
NMI_TOKENIZATION_KEY = env.str("NMI_TOKENIZATION_KEY", default="")  # Collect.js's public key
NMI_COLLECT_JS_URL = env.str(
    "NMI_COLLECT_JS_URL", default="https://secure.nmi.com/token/Collect.js"
)

BELUGA_API_URL = env.str("BELUGA_API_URL", default="")
BELUGA_API_KEY = env.str("BELUGA_API_KEY", default="")
BELUGA_WEBHOOK_SECRET = env.str("BELUGA_WEBHOOK_SECRET", default="")

DISPENSEPRO_API_URL = env.str("DISPENSEPRO_API_URL", default="")
DISPENSEPRO_API_KEY = env.str("DISPENSEPRO_API_KEY", default="")
DISPENSEPRO_WEBHOOK_SECRET = env.str("DISPENSEPRO_WEBHOOK_SECRET", default="")
# The own pharmacy's fulfilment partner signs its shipment webhooks with this.
OWN_PHARMACY_WEBHOOK_SECRET = env.str("OWN_PHARMACY_WEBHOOK_SECRET", default="")

GATEWAY_TIMEOUT_SECONDS = env.float("GATEWAY_TIMEOUT_SECONDS", default=30.0)
# A refund attempt or a charge left PENDING (crash, timeout) is resolved by asking the gateway
# once it is older than this; younger ones may still be waiting for their answer.
REFUND_RECONCILE_AFTER_SECONDS = env.int("REFUND_RECONCILE_AFTER_SECONDS", default=120)
CHARGE_RECONCILE_AFTER_SECONDS = env.int("CHARGE_RECONCILE_AFTER_SECONDS", default=120)
# A refund the gateway answered "pending" is asked about again once it is older than this (and
# on every janitor run after), so it settles even where the gateway's webhooks do not arrive.
PENDING_REFUND_CHECK_AFTER_SECONDS = env.int("PENDING_REFUND_CHECK_AFTER_SECONDS", default=900)

# --- Email and SMS (workflow steps) --------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@clinic.example")

# --- Workflows (the clinic's automations) --------------------------------------------------
WORKFLOW_SMS_BACKEND = env.str(
    "WORKFLOW_SMS_BACKEND", default="emr.workflows.sms.LoggingSmsBackend"
)
# Webhook steps send to public hosts only (emr/workflows/destinations.py); a development setup
# whose receiver runs on this machine turns the check off explicitly.
WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool(
    "WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False
)
WORKFLOW_WEBHOOK_REQUIRE_HTTPS = env.bool("WORKFLOW_WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)
WORKFLOW_WEBHOOK_TIMEOUT_SECONDS = env.float("WORKFLOW_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WORKFLOW_RETRY_DELAYS = env.list(
    "WORKFLOW_RETRY_DELAYS", cast=float, default=[30, 120, 600, 1800, 7200]
)
WORKFLOW_RUN_LEASE_SECONDS = env.int("WORKFLOW_RUN_LEASE_SECONDS", default=300)
# Links in patient messages (payment recovery) point here.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://localhost:8000")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "emr.kernel.api.GuardedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["emr.kernel.api.IsStaff"],
    # The contract is JSON (API.md): a form body's blanks and coercions are not the schema's.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "emr.kernel.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "emr.kernel.api.PageNumbers",
    "PAGE_SIZE": 50,
    # Per token (or signed-in user) and per client address. Webhooks are plain Django views and
    # not throttled here: their senders retry on their own schedules.
    "DEFAULT_THROTTLE_CLASSES": [
        "emr.kernel.api.TokenRateThrottle",
        "emr.kernel.api.AddressRateThrottle",
    ],
}
API_THROTTLE_PER_TOKEN = env.str("API_THROTTLE_PER_TOKEN", default="1200/minute")
API_THROTTLE_PER_ADDRESS = env.str("API_THROTTLE_PER_ADDRESS", default="3000/minute")
# Wrong API tokens one address may send before all its tokens wait (a guesser's budget).
API_TOKEN_FAILURES_PER_ADDRESS = env.str("API_TOKEN_FAILURES_PER_ADDRESS", default="20/hour")
SPECTACULAR_SETTINGS = {
    "TITLE": "EMR billing API",
    "DESCRIPTION": "Orders, invoices, payments, refunds and subscriptions for a telehealth clinic.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every patient and money endpoint: staff with a role only.
    "SERVE_PERMISSIONS": ["emr.kernel.api.IsStaff"],
    # The docs pages load Swagger UI and ReDoc from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Refusals are part of the contract: every operation documents its {code, detail} answers.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "emr.kernel.api_schema.document_error_responses",
    ],
    # Several models have a `status`: name each enum after its own state machine.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.states.OrderStatus",
        "InvoiceStatusEnum": "billing.states.InvoiceStatus",
        "PaymentStatusEnum": "billing.states.PaymentStatus",
        "SubscriptionStatusEnum": "subscriptions.states.SubscriptionStatus",
        "SwitchStatusEnum": "subscriptions.states.SwitchStatus",
        "IntakeStatusEnum": "emr.models.IntakeStatus",
        "OrderKindEnum": "orders.states.OrderKind",
        "EscalationRouteEnum": "emr.support.states.EscalationRoute",
        "EscalationStatusEnum": "emr.support.states.EscalationStatus",
    },
}

# --- Production hardening (manage.py check --deploy passes with DEBUG off) -----------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Operating it: logs, readiness, metrics --------------------------------------------------
# JSON lines (emr/kernel/log_format.py) for log shippers; the plain format on a developer's
# machine. Both are scrubbed of PHI, tokens and card numbers.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "emr.kernel.log_format.ScrubFilter"}},
    "formatters": {
        "plain": {
            "()": "emr.kernel.log_format.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "emr.kernel.log_format.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["scrub"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs every request at INFO; our adapters log what matters.
        "stripe": {"level": "WARNING"},
        # Django's own per-request line repeats emr.requests' without the request id.
        "django.server": {"level": "WARNING"},
    },
}
# Celery keeps the logging configured here instead of installing its own handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /readyz answers 503 past these: how old the beat's heartbeat may be, how old the oldest
# undelivered workflow event (an age of 0 turns its check off), and how many gateway attempts
# may still be pending once their janitor should have resolved them (older than the janitor's own
# threshold plus this grace, one janitor period).
READYZ_BEAT_MAX_AGE_SECONDS = env.int("READYZ_BEAT_MAX_AGE_SECONDS", default=180)
READYZ_OUTBOX_MAX_LAG_SECONDS = env.int("READYZ_OUTBOX_MAX_LAG_SECONDS", default=300)
READYZ_MAX_STUCK_ATTEMPTS = env.int("READYZ_MAX_STUCK_ATTEMPTS", default=5)
READYZ_JANITOR_GRACE_SECONDS = env.int("READYZ_JANITOR_GRACE_SECONDS", default=180)
# /metrics answers staff who are signed in, and scrapers sending "Authorization: Bearer <this>".
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
