"""How hard and how wide to fetch: the SIGN_DATASETS_FETCH_* settings of
URLs found in source files, and the SIGN_DATASETS_SOURCE_* ones of source
files, each a `FetchSettings`."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

from sign_datasets.io.settings import FetchConfigError, fetch_number
from sign_datasets.io.url_policy import ALLOWED_HOSTS_ENV, parse_allowed

WORKERS_ENV = "SIGN_DATASETS_FETCH_WORKERS"
TIMEOUT_ENV = "SIGN_DATASETS_FETCH_TIMEOUT"
RETRIES_ENV = "SIGN_DATASETS_FETCH_RETRIES"
BACKOFF_ENV = "SIGN_DATASETS_FETCH_BACKOFF"
MAX_BYTES_ENV = "SIGN_DATASETS_FETCH_MAX_BYTES"
SOURCE_MAX_BYTES_ENV = "SIGN_DATASETS_SOURCE_MAX_BYTES"
SOURCE_TIMEOUT_ENV = "SIGN_DATASETS_SOURCE_TIMEOUT"

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# The largest object of the course bucket is 548 MB; a team's zip may be larger.
DEFAULT_SOURCE_MAX_BYTES = 8 * 1024 ** 3
DEFAULT_SOURCE_TIMEOUT = 3600.0


@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """How hard and how wide to fetch. `from_env` reads the overrides users set."""

    workers: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # The read timeout bounds each socket read, not the whole exchange: a
    # server trickling a byte a second would never trip it.
    total_timeout: float = 300.0
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    # A hostile Retry-After of a day must not stall the build for a day.
    retry_after_max: int = 60
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    allowed_hosts: tuple[str, ...] = ()
    # None: a bar only when stderr is a terminal (tqdm's rule), so logs stay clean.
    progress: bool | None = None

    def __post_init__(self):
        if self.workers < 1:
            raise FetchConfigError(f"workers must be at least 1, got {self.workers}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise FetchConfigError(f"{name} must be a positive number of seconds, got {value}")
        if self.retries < 0 or self.max_redirects < 0 or not self.backoff_factor >= 0:
            raise FetchConfigError("retries, max_redirects and backoff_factor must be >= 0")
        if self.max_bytes < 1:
            raise FetchConfigError(f"max_bytes must be positive, got {self.max_bytes}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "FetchSettings":
        """Defaults, then SIGN_DATASETS_FETCH_* / SIGN_DATASETS_ALLOWED_HOSTS, then `overrides`.

        A bad value raises FetchConfigError naming the variable and the value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (raw := env.get(WORKERS_ENV)) is not None:
            values["workers"] = fetch_number(WORKERS_ENV, raw, int, minimum=1, inclusive=True)
        if (raw := env.get(TIMEOUT_ENV)) is not None:
            # "5" sets both; "5,30" sets connect then read.
            parts = raw.split(",")
            if len(parts) not in (1, 2):
                raise FetchConfigError(f"{TIMEOUT_ENV}={raw!r}: use SECONDS or CONNECT,READ "
                                       "(positive numbers of seconds)")
            parts = [fetch_number(TIMEOUT_ENV, p, float, minimum=0, whole=raw) for p in parts]
            values["connect_timeout"], values["read_timeout"] = parts[0], parts[-1]
        if (raw := env.get(RETRIES_ENV)) is not None:
            values["retries"] = fetch_number(RETRIES_ENV, raw, int, minimum=0, inclusive=True)
        if (raw := env.get(BACKOFF_ENV)) is not None:
            values["backoff_factor"] = fetch_number(BACKOFF_ENV, raw, float, minimum=0,
                                                    inclusive=True)
        if (raw := env.get(MAX_BYTES_ENV)) is not None:
            values["max_bytes"] = fetch_number(MAX_BYTES_ENV, raw, int, minimum=1, inclusive=True)
        if raw := env.get(ALLOWED_HOSTS_ENV, "").strip():
            hosts = tuple(h.strip() for h in raw.split(",") if h.strip())
            for host in hosts:
                parse_allowed(host)  # refused here, naming the variable
            values["allowed_hosts"] = hosts
        values.update(overrides)
        return cls(**values)


def source_settings(environ: Mapping[str, str] | None = None) -> FetchSettings:
    """The fetch settings of source files: their own size cap and total time
    limit (SIGN_DATASETS_SOURCE_MAX_BYTES, SIGN_DATASETS_SOURCE_TIMEOUT)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"max_bytes": DEFAULT_SOURCE_MAX_BYTES,
                              "total_timeout": DEFAULT_SOURCE_TIMEOUT, "workers": 1}
    if (raw := env.get(SOURCE_MAX_BYTES_ENV)) is not None:
        values["max_bytes"] = fetch_number(SOURCE_MAX_BYTES_ENV, raw, int, minimum=1,
                                            inclusive=True)
    if (raw := env.get(SOURCE_TIMEOUT_ENV)) is not None:
        values["total_timeout"] = fetch_number(SOURCE_TIMEOUT_ENV, raw, float, minimum=0)
    return FetchSettings.from_env(env, **values)
