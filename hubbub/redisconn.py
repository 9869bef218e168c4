"""The one way the running system makes a Redis client.

* **A pool that waits.** At most ``HUBBUB_REDIS_POOL_SIZE`` connections per process; a
  caller that finds them all busy waits up to ``HUBBUB_REDIS_POOL_TIMEOUT_S`` for one
  (redis-py's ``BlockingConnectionPool``) and then gets redis-py's ``ConnectionError`` —
  which the edges answer as ``unavailable``. redis-py's default pool instead refuses at
  once past its limit (``MaxConnectionsError``), which turned a burst of subscribes into
  failures.
* **Bounded I/O.** Connecting and each reply are bounded by ``HUBBUB_REDIS_TIMEOUT_S``, so
  a Redis that hangs fails requests instead of holding them.
* **Dead connections are noticed.** A connection idle for longer than
  ``HEALTH_CHECK_S`` is pinged before use, and a command that fails on a connection
  error is tried once more on a fresh connection (after a short backoff): connections
  pooled before a Redis restart fail nothing afterwards. Only connection errors are
  retried — a timed-out command may have run.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from hubbub.config import ConfigError, Settings

HEALTH_CHECK_S = 30  # ping a connection idle this long before using it again
RETRIES = 1  # a command failing on a connection error is sent once more
RETRY_BACKOFF_S = (0.05, 0.5)  # base, cap


def redis_from_settings(settings: Settings) -> Redis:
    """A client on its own pool (closed with the client's ``aclose()``)."""
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set")
    base, cap = RETRY_BACKOFF_S
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_pool_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=HEALTH_CHECK_S,
        retry=Retry(ExponentialBackoff(cap=cap, base=base), RETRIES, (RedisConnectionError,)),
    )
    return Redis.from_pool(pool)
