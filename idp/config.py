"""The one configuration model of the provider.

Settings come, in increasing precedence, from: the defaults below, a TOML file
(``IDP_CONFIG``, default ``config/idp.toml`` when it exists), then environment
variables. A top-level field ``issuer`` is overridden by ``IDP_ISSUER``; a field of
a section, e.g. ``tokens.access_token_ttl``, by ``IDP_TOKENS__ACCESS_TOKEN_TTL``
(double underscore between section and field).

Every field is documented in ``config/idp.toml`` with its default; a test keeps
that file and this model in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .i18n import N_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "idp.toml"


@dataclass
class TokenSettings:
    authorization_code_ttl: int = 60
    access_token_ttl: int = 300
    id_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_token_idle_ttl: int = 14 * 24 * 3600
    # A rotated refresh token presented again by its client within this many seconds
    # (two tabs refreshing at once) gets new tokens instead of revoking its family.
    # 0: every reuse revokes the family.
    refresh_token_reuse_grace: int = 10
    client_credentials_ttl: int = 300
    access_token_alg: str = "ES256"
    id_token_alg: str = "RS256"
    # Clients may ask for any of these as id_token_signed_response_alg.
    signing_algs: list[str] = field(default_factory=lambda: ["RS256", "ES256"])


@dataclass
class SessionSettings:
    cookie_name: str = "idp_session"
    idle_timeout: int = 30 * 60
    absolute_lifetime: int = 12 * 3600
    # "auto": Secure cookie and __Host- prefix when the issuer is https.
    cookie_secure: str = "auto"
    # A re-authentication is asked for sensitive actions older than this.
    reauth_max_age: int = 10 * 60
    # Seconds between two passes of back-channel logout delivery in each process (0:
    # none in process; run `idp logout deliver` from a timer instead).
    logout_propagation_interval: float = 5.0


@dataclass
class PasswordSettings:
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    min_length: int = 12
    max_length: int = 128
    check_common_list: bool = True
    # Password hashes running at once in one process (each takes a thread and 19 MiB);
    # a request that finds every slot taken waits up to hash_wait seconds, then gets a
    # 503 page. Keep it below server.threads so that other requests are still served.
    max_concurrent_hashes: int = 2
    hash_wait: float = 5.0


@dataclass
class Population:
    key: str
    # French, shown through _(): the defaults below are in the catalogue; other labels
    # given in the TOML file are shown as written.
    label: str
    examples: str = ""
    # code: local account, code by email/SMS; redirect: another directory; support: help page
    recovery_method: str = "code"
    recovery_url: str = ""
    password_min_length: int = 12
    mfa_required: bool = False


def _default_populations() -> list[Population]:
    return [
        Population("usager", N_("Usager des services"),
                   N_("demandeur d'aide, partenaire, prestataire, association, entreprise...")),
        Population("elu", N_("Élu"), N_("conseiller, élu d'une commune"), mfa_required=True),
        Population("agent_lycee", N_("Agent des lycées"), N_("agent technique, agent d'entretien"),
                   recovery_method="redirect",
                   recovery_url="https://annuaire.example.org/mot-de-passe-oublie",
                   mfa_required=True),
        Population("agent_siege", N_("Agent du siège"), N_("agent des services administratifs"),
                   recovery_method="redirect",
                   recovery_url="https://annuaire.example.org/mot-de-passe-oublie",
                   mfa_required=True),
        Population("assistance", N_("Besoin d'assistance"),
                   N_("je ne sais pas, je n'ai plus accès à mon adresse"),
                   recovery_method="support"),
    ]


@dataclass
class MessagingSettings:
    # "outbox": write every message to outbox_dir (and log it); "smtp": send for real.
    email_backend: str = "outbox"
    outbox_dir: str = "instance/outbox"
    email_from: str = "Compte usager <no-reply@example.org>"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_security: str = "starttls"  # starttls | tls | none
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 10.0
    # "outbox" or "http": POST to sms_gateway_url with sms_body_template.
    sms_backend: str = "outbox"
    sms_gateway_url: str = ""
    sms_gateway_auth_header: str = ""
    sms_body_template: str = '{"to": "{to}", "text": "{text}"}'
    sms_timeout: float = 5.0
    send_retries: int = 2
    default_region: str = "FR"
    sms_allowed_regions: list[str] = field(default_factory=lambda: ["FR", "NC"])
    sms_daily_budget: int = 5000
    # The last part of the budget, kept for password recovery and security notices.
    sms_budget_reserve_percent: int = 20
    # Throttles, "N/unit" separated by commas (unit: second, minute, hour, day).
    sms_per_destination: str = "3/hour, 6/day"
    sms_per_account: str = "5/hour, 10/day"
    # E-mails with a code or a link (security notices are never capped).
    email_per_destination: str = "5/hour, 12/day"
    email_per_account: str = "10/hour, 20/day"


@dataclass
class RegistrationSettings:
    enabled: bool = True
    phone_required: bool = True
    terms_version: str = "2026-01"
    terms_url: str = "/conditions-generales"
    captcha_backend: str = "pow"  # pow (self-hosted proof of work) | test
    captcha_difficulty: int = 50_000
    # Seconds a captcha challenge (proof of work or fallback question) stays valid.
    captcha_ttl: int = 600
    email_link_ttl: int = 48 * 3600


@dataclass
class VerificationSettings:
    code_length: int = 6
    code_ttl: int = 10 * 60
    max_attempts: int = 5
    resend_interval: int = 60
    recovery_code_ttl_email: int = 60 * 60
    recovery_code_ttl_sms: int = 10 * 60


@dataclass
class RateLimitSettings:
    enabled: bool = True
    login_per_ip: str = "30/minute"
    register_per_ip: str = "10/hour"
    recovery_per_ip: str = "10/hour"
    code_verify_per_ip: str = "30/minute"
    code_send_per_ip: str = "10/hour"
    client_failures_per_ip: str = "60/minute"
    # Client registrations (RFC 7591), each with an initial access token.
    client_registration_per_ip: str = "20/hour"
    # Requests that start a flow (an authorization request, a login, a registration, a
    # recovery), whatever their method: each stores a flow and a browser session.
    flows_per_ip: str = "120/minute, 2000/day"
    account_failures_before_delay: int = 3
    account_delay_base: float = 2.0
    account_delay_max: float = 600.0
    account_block_after: int = 25
    account_block_window: int = 24 * 3600
    account_block_duration: int = 3600
    captcha_after_failures: int = 3
    ip_failure_window: int = 3600


@dataclass
class MfaSettings:
    """The second factor: guessing it, and getting back an account whose authenticator
    is lost (or was set up by someone else)."""

    # Wrong second-factor codes of one account (login, "Mon compte"), whatever the flow:
    # a growing delay after this many...
    failures_before_delay: int = 3
    # ...starting at this many seconds and doubling up to delay_max...
    delay_base: float = 30.0
    delay_max: float = 900.0
    # ...and a block (the owner told) after this many within failure_window. A correct
    # code does not wipe the count: only the window's end does.
    block_after: int = 10
    block_duration: int = 3600
    failure_window: int = 24 * 3600
    # Without the authenticator or a recovery code, the owner asks (with a code sent to
    # the login address) for the second factor to be removed: it is, at a sign-in this
    # long after the request, unless a sign-in with the second factor cancels it...
    reset_delay: int = 3 * 24 * 3600
    # ...and the request lapses this long after it could have been used.
    reset_window: int = 7 * 24 * 3600


@dataclass
class SupportSettings:
    """How citizens reach the help desk (shown on the "Besoin d'assistance" page)."""

    email: str = ""
    phone: str = ""
    hours: str = ""
    url: str = ""


@dataclass
class LegalSettings:
    """The legal pages (legal notice, personal data, cookies): who publishes the service,
    who hosts it, who is responsible for the personal data and how to reach them."""

    # The publisher, with its address ("Province Sud, 6 route des Artifices, 98800 Nouméa").
    publisher: str = ""
    publication_director: str = ""
    # The host, with its address.
    host: str = ""
    # The data controller (RGPD art. 4), usually the organisation, with its address.
    data_controller: str = ""
    # How to reach the data protection officer (an address, e-mail or postal).
    dpo_contact: str = ""
    # Where to complain.
    supervisory_authority: str = "la CNIL, 3 place de Fontenoy, 75007 Paris (www.cnil.fr)"


@dataclass
class ServerSettings:
    """``idp serve``: granian, unmodified, serving ``idp.wsgi:app``."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes; 0: one per core.
    workers: int = 0
    # Python threads per worker answering requests. A password hash releases the GIL, so a
    # few more threads than cores keep the CPU busy while some threads wait on one.
    threads: int = 4
    # Connections waiting to be accepted.
    backlog: int = 1024
    # Seconds a client has to send a request's headers; a slow client never holds a
    # Python thread (the server reads requests in its own event loop).
    header_read_timeout: int = 10
    # One line per request in the log (method, escaped path without its query, status).
    access_log: bool = False


@dataclass
class ObservabilitySettings:
    """Logs, metrics and health checks (docs/operations.md)."""

    # "text": one readable line per event; "json": one JSON object per line, for a log
    # collector. Either way with the request id (X-Request-Id).
    log_format: str = "text"
    log_level: str = "INFO"
    # /metrics answers a scraper sending this bearer token, or from these networks.
    metrics_token: str = ""
    metrics_networks: list[str] = field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])


@dataclass
class AuditSettings:
    retention_days: int = 365


@dataclass
class ClientRegistrationSettings:
    """Dynamic client registration (RFC 7591/7592), open only with an initial access
    token issued by an administrator."""

    enabled: bool = True
    # Lifetime of a new initial access token when the administrator does not choose one...
    initial_token_ttl: int = 7 * 24 * 3600
    # ...and the longest one may choose.
    initial_token_max_ttl: int = 90 * 24 * 3600


@dataclass
class HubSettings:
    """The account as a hub: requests, notifications, wallet, subscriptions (idp/hub/)."""

    # Calls to /api/ per app (by client_id).
    api_per_client: str = "600/minute"
    # Notifications an app may push, per user and per app overall.
    notifications_per_user: str = "10/hour, 30/day"
    notifications_per_client: str = "1000/hour"
    # Wallet: largest document, documents per user, where the encrypted files go.
    wallet_max_bytes: int = 10 * 1024 * 1024
    wallet_max_documents: int = 50
    wallet_storage: str = "filesystem"  # filesystem | s3
    wallet_dir: str = "instance/wallet"
    # AES-256-GCM key of the files, base64 (32 bytes); empty: derived from secret_key.
    wallet_key: str = ""
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # How long an app may read a document the user picked for it.
    document_grant_ttl: int = 10 * 60
    # Deletion events kept for apps to read (GET /api/events).
    events_retention_days: int = 30


@dataclass
class Settings:
    issuer: str = "http://127.0.0.1:5000"
    # Empty: a SQLite file in the instance folder, migrated on first start.
    database_url: str = ""
    # PostgreSQL: a statement running longer is cancelled (0: no limit), so that a stuck
    # query fails its request instead of holding a thread. Migrations, purges: no limit.
    database_statement_timeout: float = 15.0
    # Empty: an in-process store, acceptable for one process only.
    redis_url: str = ""
    # Prefix of every key this instance writes in Redis (several deployments may share one).
    redis_prefix: str = "idp:"
    # Redis Sentinel: "host:port" of each sentinel; the master of redis_sentinel_service
    # is then used, with the database and password of redis_url (its host is ignored).
    redis_sentinels: list[str] = field(default_factory=list)
    redis_sentinel_service: str = "idp"
    # Empty: a random key is generated into the instance folder on first start.
    secret_key: str = ""
    instance_dir: str = "instance"
    keys_dir: str = "keys"
    keys_max_age_days: int = 180
    default_locale: str = "fr"
    # Times shown to users (pages, emails) are in this zone, e.g. "Pacific/Noumea".
    display_timezone: str = "Europe/Paris"
    locales: list[str] = field(default_factory=lambda: ["fr", "en"])
    service_name: str = "Compte usager"
    # With its article, as it reads in a sentence: "la Province Sud", "le Département".
    organisation_name: str = "la Région"
    # Salt for pairwise subject identifiers; empty: derived from secret_key.
    pairwise_salt: str = ""
    auto_migrate: bool = True
    # Reverse proxies in front of the provider whose X-Forwarded-For/-Proto/-Host are
    # trusted (0: none). Per-IP rate limits need the real client address.
    trusted_proxies: int = 0
    debug: bool = False
    testing: bool = False
    tokens: TokenSettings = field(default_factory=TokenSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    passwords: PasswordSettings = field(default_factory=PasswordSettings)
    messaging: MessagingSettings = field(default_factory=MessagingSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    mfa: MfaSettings = field(default_factory=MfaSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    client_registration: ClientRegistrationSettings = field(
        default_factory=ClientRegistrationSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    support: SupportSettings = field(default_factory=SupportSettings)
    legal: LegalSettings = field(default_factory=LegalSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    populations: list[Population] = field(default_factory=_default_populations)

    # -- derived values ---------------------------------------------------
    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")

    def population(self, key: str) -> Population | None:
        return next((p for p in self.populations if p.key == key), None)

    def resolve_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def instance_path(self) -> Path:
        return self.resolve_path(self.instance_dir)

    @property
    def keys_path(self) -> Path:
        return self.resolve_path(self.keys_dir)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'compte-usager.sqlite3'}"


class ConfigError(ValueError):
    pass


def _coerce(value: typing.Any, annotation: typing.Any, where: str) -> typing.Any:
    """Turn a TOML or environment value into the field's declared type."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return _build(annotation, value, where)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else [
                v.strip() for v in value.split(",") if v.strip()]
        return [_coerce(v, item_type, f"{where}[]") for v in value]
    if annotation is bool:
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if annotation in (int, float, str):
        try:
            return annotation(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {value!r} is not a {annotation.__name__}") from exc
    return value


def _build(cls: type, data: dict, where: str = "") -> typing.Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} in {where or 'top level'}")
    kwargs = {k: _coerce(v, hints[k], f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _env_overrides(environ: typing.Mapping[str, str]) -> dict:
    overrides: dict = {}
    sections = {f.name for f in dataclasses.fields(Settings)
                if dataclasses.is_dataclass(typing.get_type_hints(Settings)[f.name])}
    for name, value in environ.items():
        if not name.startswith("IDP_") or name == "IDP_CONFIG":
            continue
        key = name[4:].lower()
        if "__" in key:
            section, sub = key.split("__", 1)
            if section in sections:
                overrides.setdefault(section, {})[sub] = value
        elif key in {f.name for f in dataclasses.fields(Settings)} and key not in sections:
            overrides[key] = value
    return overrides


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(overrides: dict | None = None,
                  environ: typing.Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the TOML file, the environment and ``overrides``."""
    environ = os.environ if environ is None else environ
    data: dict = {}
    config_file = Path(environ.get("IDP_CONFIG", DEFAULT_CONFIG_FILE))
    if config_file.exists():
        with config_file.open("rb") as fh:
            data = tomllib.load(fh)
    elif "IDP_CONFIG" in environ:
        raise ConfigError(f"IDP_CONFIG points to a missing file: {config_file}")
    data = _merge(data, _env_overrides(environ))
    data = _merge(data, overrides or {})
    settings = _build(Settings, data)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if not settings.issuer.startswith(("http://", "https://")) or settings.issuer.endswith("/"):
        raise ConfigError("issuer must be an http(s) URL without a trailing slash")
    try:
        ZoneInfo(settings.display_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown display_timezone {settings.display_timezone!r}") from None
    if settings.passwords.max_concurrent_hashes < 1:
        raise ConfigError("passwords.max_concurrent_hashes must be at least 1")
    if settings.passwords.min_length < 8:
        raise ConfigError("passwords.min_length may never be below 8")
    if settings.observability.log_format not in ("text", "json"):
        raise ConfigError("observability.log_format must be text or json")
    try:
        for network in settings.observability.metrics_networks:
            ipaddress.ip_network(network)
    except ValueError as exc:
        raise ConfigError(f"observability.metrics_networks: {exc}") from None
    if settings.server.threads < 1 or settings.server.workers < 0:
        raise ConfigError("server.threads must be at least 1, server.workers at least 0")
    if not 1 <= settings.server.header_read_timeout <= 60:
        raise ConfigError("server.header_read_timeout must be between 1 and 60 seconds")
    if not 0 <= settings.messaging.sms_budget_reserve_percent <= 100:
        raise ConfigError("messaging.sms_budget_reserve_percent must be between 0 and 100")
    if settings.mfa.block_after < 1 or settings.mfa.block_duration < 1 \
            or settings.mfa.failure_window < 1:
        raise ConfigError("mfa.block_after, block_duration and failure_window must be positive")
    if settings.verification.code_length < 4:
        raise ConfigError("verification.code_length must be at least 4")
    registration = settings.client_registration
    if not 60 <= registration.initial_token_ttl <= registration.initial_token_max_ttl:
        raise ConfigError("client_registration.initial_token_ttl must be at least 60 seconds "
                          "and at most initial_token_max_ttl")
    for alg in settings.tokens.signing_algs:
        if alg not in ("RS256", "ES256"):
            raise ConfigError(f"unsupported signing algorithm {alg}")
    if settings.hub.wallet_storage not in ("filesystem", "s3"):
        raise ConfigError("hub.wallet_storage must be filesystem or s3")
    if settings.hub.wallet_storage == "s3" and not settings.hub.s3_bucket:
        raise ConfigError("hub.s3_bucket is required with hub.wallet_storage = s3")
    for population in settings.populations:
        if population.recovery_method not in ("code", "redirect", "support"):
            raise ConfigError(f"population {population.key}: bad recovery_method")
        if population.password_min_length < 8:
            raise ConfigError(f"population {population.key}: password_min_length below 8")


def as_public_dict(settings: Settings) -> dict:
    """The settings with secret values masked, for `idp config show`."""
    data = dataclasses.asdict(settings)
    for path in (("secret_key",), ("pairwise_salt",), ("messaging", "smtp_password"),
                 ("observability", "metrics_token"),
                 ("messaging", "sms_gateway_auth_header"), ("hub", "wallet_key"),
                 ("hub", "s3_secret_access_key")):
        node = data
        for key in path[:-1]:
            node = node[key]
        if node.get(path[-1]):
            node[path[-1]] = "***"
    if "@" in data["database_url"]:
        data["database_url"] = "***"
    return data
