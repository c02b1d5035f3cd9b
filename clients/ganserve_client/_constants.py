"""Every default of the SDK and CLI, in one place."""

from __future__ import annotations

import httpx

VERSION = "0.1.0"

#: Environment variables read when ``base_url`` / ``api_key`` are not given.
ENV_URL = "GANSERVE_URL"
ENV_API_KEY = "GANSERVE_API_KEY"

#: Where ``make serve`` listens.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

#: 60 s for a whole request (a large grid on a CPU), 5 s to connect.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)

#: Retries after the first attempt, so up to three attempts in all.
DEFAULT_MAX_RETRIES = 2

#: Exponential backoff: 0.5 s, 1 s, 2 s, ... capped at 8 s, each shortened by up to 25 % jitter.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_JITTER = 0.25

#: A server's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER = 60.0

#: Statuses worth another attempt: the server may answer differently a moment later.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
