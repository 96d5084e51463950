"""The service's settings: one pydantic-settings class; nothing else reads the environment."""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The development secret. Tokens signed with it are worthless outside a developer's machine,
# so production refuses to start with it.
DEFAULT_JWT_SECRET = "dev-secret-change-me-dev-secret-change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class CronSchedule(BaseModel):
    """An EVENT_SCHEDULES entry whose events carry a payload, as Hasura's cron triggers':
    {"cron": "0 3 * * *", "payload": {"digest": "daily"}}."""

    model_config = ConfigDict(extra="forbid")
    cron: str
    payload: JsonValue = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Environment = Environment.development

    # Database. Unset = an embedded PostgreSQL under `service_data_dir`.
    database_url: str | None = None
    service_data_dir: Path = Path(".data/postgres")
    db_pool_size: int = Field(10, ge=1)
    db_connect_timeout: float = Field(5.0, gt=0)
    # how long a request waits for a free connection before a 503 (SQLAlchemy's pool_timeout)
    db_pool_timeout: float = Field(30.0, gt=0)
    statement_timeout_ms: int = Field(15_000, ge=0)
    # How long `service migrate` waits for another replica's migration before giving up.
    migration_lock_timeout: float = Field(300.0, gt=0)
    # A database migrated past this code's head by a newer release is normal during a rolling
    # deploy; teams that want to refuse it set this.
    refuse_newer_schema: bool = False
    # At start, how long to wait (retrying with backoff) for a database that is not up yet.
    db_startup_timeout: float = Field(60.0, gt=0)
    # Migrations hold a session-level advisory lock, which a transaction-mode pooler cannot
    # keep: behind PgBouncer, point this at PostgreSQL itself. Unset = DATABASE_URL.
    migration_database_url: str | None = None
    # "pgbouncer": DATABASE_URL is a PgBouncer in transaction mode (no statement cache, no
    # statement_timeout startup parameter: set it on the role instead).
    database_pooler: Literal["none", "pgbouncer"] = "none"
    # A read replica (a hot standby of DATABASE_URL's database, or a pooler in front of one,
    # as DATABASE_POOLER says): queries and subscriptions run there, mutations on DATABASE_URL.
    database_read_url: str | None = None
    # With a read replica: for this long after a mutation, the caller's reads run on the
    # replica only once it has replayed the mutation (a cookie carries how far); 0: never.
    read_your_writes_seconds: int = Field(30, ge=0)
    # A read replica further behind its primary than this serves no reads until it catches
    # up (they go to the primary); 0: no limit.
    read_replica_max_lag_seconds: float = Field(0.0, ge=0)

    # Shutdown on SIGTERM: /readyz turns 503 at once; the listener stays open for
    # `shutdown_drain_seconds` (load balancers notice), then in-flight requests get up to
    # `shutdown_grace_seconds` to finish before the pool closes.
    shutdown_drain_seconds: float = Field(0.0, ge=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)

    # Metrics: operation names are chosen by clients; past this many distinct names per
    # process, further ones are counted as "other".
    metrics_max_operations: int = Field(100, ge=0)

    # Authentication.
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_jwks_url: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_audience: str | None = "authenticated"
    # The issuer (`iss`) tokens must name, when set (an identity provider's URL, say).
    jwt_issuer: str | None = None
    # Where a token names its role: a claim, or a path into nested claims (`app_metadata.role`;
    # a JSON list of keys when a key has dots: ["https://example.com/claims", "role"]).
    jwt_role_claim: Annotated[list[str], NoDecode] = ["role"]
    jwt_leeway_seconds: int = Field(30, ge=0)
    jwt_allowed_roles: list[str] = ["anon", "authenticated"]

    # GraphQL limits.
    default_page_size: int = Field(20, ge=1)
    max_page_size: int = Field(100, ge=1)
    max_query_depth: int = Field(12, ge=1)
    # rows all of an operation's connections may return: page sizes multiplied through nesting
    max_query_rows: int = Field(50_000, ge=1)
    max_aliases: int = Field(30, ge=1)
    max_tokens: int = Field(5_000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1)
    # requests in one batch (a JSON array of them); 0 refuses batches
    max_batch_operations: int = Field(10, ge=0)
    # Operations a minute per caller, by role ({"anon": 120}); roles not named: no limit
    # (http/rate_limit.py)
    rate_limits: dict[str, Annotated[int, Field(ge=1)]] = {}
    # Trusted documents: the operations a frontend build declared (Apollo's persisted query
    # manifest, or a map of id -> document); with `_only`, no other query text runs.
    trusted_documents_file: Path | None = None
    trusted_documents_only: bool = False
    # REST endpoints over saved operations ("METHOD /path/:variable" -> operation), under
    # /rest (http/rest.py)
    rest_endpoints_file: Path | None = None
    # An Apollo Federation 2 subgraph: each model's type an entity keyed by its primary key,
    # with `_entities` and `_service` for a router (graphql/schema.py)
    federation: bool = False

    # Event triggers (service/events.py): each trigger's webhook, {"name": "https://..."};
    # bodies signed with the secret when set; a delivery tried at most `max_tries` times,
    # waiting `retry_seconds`, then twice as long each time; delivered events kept this long.
    event_webhooks: dict[str, str] = {}
    # Scheduled events (service/schedules.py): {"name": "cron schedule"} (UTC), each sent to
    # EVENT_WEBHOOKS' webhook of the same name; a time missed while no process ran is still
    # sent when at most `grace` seconds old.
    # name -> a cron schedule, or {"cron": ..., "payload": <JSON each event carries>}
    event_schedules: dict[str, str | CronSchedule] = {}
    event_schedule_grace_seconds: float = Field(60.0, ge=0)
    event_webhook_secret: SecretStr | None = None
    event_max_tries: int = Field(8, ge=1)
    event_retry_seconds: float = Field(10.0, gt=0)
    event_timeout_seconds: float = Field(10.0, gt=0)
    event_retention_days: float = Field(7.0, gt=0)

    # Subscriptions (live queries over WebSocket): how often each one's query runs again,
    # and how many one connection may hold.
    subscription_poll_seconds: float = Field(1.0, ge=0.05)
    max_subscriptions_per_connection: int = Field(20, ge=0)
    # distinct live queries one process polls (equal subscriptions share one)
    max_live_queries: int = Field(1000, ge=0)
    # event streams (Accept: text/event-stream): a comment this often on a quiet stream, so
    # proxies do not close it as idle
    sse_keepalive_seconds: float = Field(15.0, gt=0)

    # OpenTelemetry: traces go over OTLP/HTTP when an endpoint is set (service/tracing.py);
    # the exporter reads these and the other OTEL_* variables itself.
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_service_name: str = "service"

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Browser origins allowed to call the API (`*` for any): a comma-separated list or JSON.
    cors_origins: Annotated[list[str], NoDecode] = []
    # gzip for /graphql responses of at least `gzip_min_bytes` when the client accepts it;
    # zlib's level, 1 (fastest) to 9; 0 turns it off
    gzip_level: int = Field(1, ge=0, le=9)
    gzip_min_bytes: int = Field(1024, ge=0)
    # Answers to queries marked `@cached(ttl:)` kept in memory, per process
    # (http/response_cache.py): at most this many bytes (0: none kept), for at most this long.
    response_cache_max_bytes: int = Field(64 * 1024 * 1024, ge=0)
    response_cache_max_ttl: int = Field(300, ge=1)
    # Responses carry PostgreSQL's plans when a request sends `X-Explain: on` (or `analyze`):
    # db/explain.py. Default: on outside production (they show table and index names).
    allow_explain: bool | None = None
    log_format: LogFormat | None = None  # default: json in production, text elsewhere
    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("jwt_role_claim", mode="before")
    @classmethod
    def _role_claim_path(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(".")
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(key, str) and key for key in value)
        ):
            raise ValueError(
                "must name a claim: `role`, `app_metadata.role` or a JSON list of keys"
            )
        return value

    @field_validator("event_webhooks")
    @classmethod
    def _webhooks_are_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for trigger, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"the webhook of {trigger!r} must be an http(s) URL")
        return value

    @field_validator("event_schedules")
    @classmethod
    def _schedules_are_cron(
        cls, value: dict[str, str | CronSchedule]
    ) -> dict[str, str | CronSchedule]:
        from service.schedules import cron_expression

        for name, schedule in value.items():
            try:
                cron_expression(schedule if isinstance(schedule, str) else schedule.cron)
            except ValueError as error:
                raise ValueError(f"the schedule of {name!r}: {error}") from None
        return value

    @field_validator("database_url", "migration_database_url", "database_read_url")
    @classmethod
    def _empty_url_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.environment is Environment.production:
            using_secret = not (self.jwt_jwks_url or self.jwt_jwks_file)
            if using_secret and self.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET:
                raise ValueError(
                    "JWT_SECRET is the built-in development secret; set JWT_SECRET (or "
                    "JWT_JWKS_URL / JWT_JWKS_FILE) before running with ENVIRONMENT=production"
                )
        if self.trusted_documents_only and self.trusted_documents_file is None:
            raise ValueError("TRUSTED_DOCUMENTS_ONLY needs TRUSTED_DOCUMENTS_FILE")
        if self.database_read_url and not self.database_url:
            raise ValueError(
                "DATABASE_READ_URL needs DATABASE_URL (the embedded PostgreSQL has no replica)"
            )
        unsent = sorted(set(self.event_schedules) - set(self.event_webhooks))
        if unsent:
            raise ValueError(
                f"EVENT_SCHEDULES names {', '.join(unsent)} without a webhook in EVENT_WEBHOOKS"
            )
        if self.default_page_size > self.max_page_size:
            raise ValueError("DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @property
    def explain_allowed(self) -> bool:
        return not self.is_production if self.allow_explain is None else self.allow_explain

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.json if self.is_production else LogFormat.text


@lru_cache
def get_settings() -> Settings:
    return Settings()
