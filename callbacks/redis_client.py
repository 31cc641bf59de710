"""The one place a Redis client is made: from a redis:// URL, or through Redis Sentinel.

Everything that talks to Redis (web requests, rq workers and rq's scheduler, the CLI) passes
its Redis address to `redis_connection`. An address is either a URL the redis library reads
(`redis://`, `rediss://`, `unix://`) or a Sentinel address that `sentinel_address` builds from
the IVR_REDIS_SENTINEL* settings::

    redis+sentinel://[:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]

A Sentinel client asks the Sentinels for the current master on every new connection (the
redis library's `Sentinel.master_for`), so a failover needs no new configuration.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from redis import Redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
CLIENT_OPTIONS = {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 30}
"""The same timeouts for every client, direct or through Sentinel."""

_connections: dict[str, Redis] = {}
_lock = threading.Lock()


class RedisAddressError(ValueError):
    """A Redis or Sentinel setting cannot be used; the message names the setting."""


@dataclass(frozen=True)
class SentinelAddress:
    """Where the Sentinels are and which master they watch."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    password: str = ""
    sentinel_password: str = ""
    db: int = 0


def redis_connection(address: str) -> Redis:
    """One Redis client per address per process (a URL, or a `redis+sentinel://` address)."""
    with _lock:
        if address not in _connections:
            _connections[address] = _new_client(address)
        return _connections[address]


def is_sentinel_address(address: str) -> bool:
    """True when `address` reaches Redis through Sentinel."""
    return address.startswith(SENTINEL_SCHEME + "://")


def sentinel_address(sentinels: str, service: str, password: str = "",
                     sentinel_password: str = "") -> str:
    """The address for IVR_REDIS_SENTINELS ('host:port,host:port') and the master's name."""
    hosts = parse_sentinels(sentinels)
    if not service:
        raise RedisAddressError("IVR_REDIS_SENTINEL_MASTER must name the master the Sentinels "
                                "monitor (the name in `sentinel monitor <name> ...`)")
    credentials = f":{quote(password, safe='')}@" if password else ""
    query = f"?sentinel_password={quote(sentinel_password, safe='')}" if sentinel_password else ""
    netloc = ",".join(f"{host}:{port}" for host, port in hosts)
    return f"{SENTINEL_SCHEME}://{credentials}{netloc}/{quote(service, safe='')}{query}"


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """'10.0.0.1:26379, 10.0.0.2:26379' as (host, port) pairs (26379 when a port is left out)."""
    hosts = []
    for part in (piece.strip() for piece in value.split(",")):
        if not part:
            continue
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "26379")
        if not host or not port.isdigit():
            raise RedisAddressError(
                f"IVR_REDIS_SENTINELS: {part!r} is not host:port (for example 10.0.0.5:26379)")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise RedisAddressError("IVR_REDIS_SENTINELS lists no host:port")
    return tuple(hosts)


def parse_sentinel_address(address: str) -> SentinelAddress:
    """The parts of a `redis+sentinel://` address."""
    parts = urlsplit(address)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else ""
    path = [unquote(piece) for piece in parts.path.split("/") if piece]
    if not path:
        raise RedisAddressError(f"{SENTINEL_SCHEME} address names no master: add /<name>")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    query = parse_qs(parts.query)
    return SentinelAddress(parse_sentinels(hosts), path[0], password,
                           query.get("sentinel_password", [""])[0], db)


def _new_client(address: str) -> Redis:
    """A client for `address` with the shared timeouts."""
    if not is_sentinel_address(address):
        return Redis.from_url(address, **CLIENT_OPTIONS)  # type: ignore[arg-type]
    parts = parse_sentinel_address(address)
    sentinel_options: dict[str, object] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    if parts.sentinel_password:
        sentinel_options["password"] = parts.sentinel_password
    sentinel = Sentinel(list(parts.sentinels), sentinel_kwargs=sentinel_options,
                        password=parts.password or None, db=parts.db, **CLIENT_OPTIONS)
    client: Redis = sentinel.master_for(parts.service)
    return client
