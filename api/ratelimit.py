"""A token bucket per client address, in process: enough to slow a scraper or a guesser."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import HTTPException, Request

from api.documents import is_verification_document


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`per_minute` requests per client address, with bursts up to the same number."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}
        self._max_clients = max_clients

    def allow(self, client: str, now: float | None = None) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        moment = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget_full(moment)
            bucket = self._buckets[client] = _Bucket(self.capacity, moment)
        bucket.tokens = min(self.capacity, bucket.tokens + (moment - bucket.at) * self.rate)
        bucket.at = moment
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold no information)."""
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.capacity:
                del self._buckets[client]
        if len(self._buckets) >= self._max_clients:
            self._buckets.clear()


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def rate_limited(request: Request) -> None:
    """Dependency of public and party routes: 429 with Retry-After when over the limit. The
    verification documents (api.documents) count against a limit of their own, far above what
    verifiers need, so that checking many badges never waits on the pages' limit (nor the other
    way round)."""
    document = request.method in ("GET", "HEAD") and is_verification_document(request.url.path)
    limiter: RateLimiter = (
        request.app.state.document_limiter if document else request.app.state.limiter
    )
    wait = limiter.allow(client_address(request))
    if wait > 0:
        raise HTTPException(
            429,
            "too many requests: wait a moment and try again",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
