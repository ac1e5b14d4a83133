"""The JSON connection file: where the emulator listens and how ccxt must be configured to reach it.

``rest`` maps are keyed exactly like ccxt's ``urls['api']`` so a client merges them as they are. The
TLS variant uses user-info URLs (``https://demo-api@127.0.0.1:PORT/api/v3``) so ccxt picks Binance's
production spot / linear error maps (docs/ccxt-binance.md §1.2). Every family ccxt knows points at the emulator,
including ones the emulator does not serve (they answer 404), so nothing can leave the machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONNECTION_VERSION = 1

# ccxt urls['api'] key -> (path, which TLS user-info host family: "spot" or "fapi")
REST_PATHS: dict[str, tuple[str, str]] = {
    "public": ("/api/v3", "spot"),
    "private": ("/api/v3", "spot"),
    "v1": ("/api/v1", "spot"),
    "sapi": ("/sapi/v1", "spot"),
    "sapiV2": ("/sapi/v2", "spot"),
    "sapiV3": ("/sapi/v3", "spot"),
    "sapiV4": ("/sapi/v4", "spot"),
    "fapiPublic": ("/fapi/v1", "fapi"),
    "fapiPublicV2": ("/fapi/v2", "fapi"),
    "fapiPublicV3": ("/fapi/v3", "fapi"),
    "fapiPrivate": ("/fapi/v1", "fapi"),
    "fapiPrivateV2": ("/fapi/v2", "fapi"),
    "fapiPrivateV3": ("/fapi/v3", "fapi"),
    "fapiData": ("/futures/data", "fapi"),
    "dapiPublic": ("/dapi/v1", "spot"),
    "dapiPrivate": ("/dapi/v1", "spot"),
    "dapiPrivateV2": ("/dapi/v2", "spot"),
    "dapiData": ("/futures/data", "spot"),
    "eapiPublic": ("/eapi/v1", "spot"),
    "eapiPrivate": ("/eapi/v1", "spot"),
    "papi": ("/papi/v1", "spot"),
    "papiV2": ("/papi/v2", "spot"),
}

WS_PATHS: dict[str, str] = {
    "spot": "/stream/ws",  # must contain "/stream": ccxt.pro treats such sockets as spot
    "margin": "/stream/ws",
    "linear": "/fstream/ws",  # must not; ccxt rewrites it to /fstream/{public,market,private}/ws
    "inverse": "/dstream/ws",
    "papi": "/pm/ws",
    "stock": "/equity/ws",
    "option": "/eoptions/public/ws",
    "optionMarket": "/eoptions/market/ws",
    "optionPrivate": "/eoptions/private/ws",
}
WS_API_PATHS: dict[str, str] = {"spot": "/ws-api/v3", "linear": "/ws-fapi/v1", "inverse": "/ws-dapi/v1"}

USER_INFO = {"spot": "demo-api", "fapi": "demo-fapi"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def rest_urls(host: str, port: int, tls: bool) -> dict[str, str]:
    if not tls:
        return {key: f"http://{host}:{port}{path}" for key, (path, _) in REST_PATHS.items()}
    return {key: f"https://{USER_INFO[fam]}@{host}:{port}{path}" for key, (path, fam) in REST_PATHS.items()}


def ws_urls(host: str, port: int, tls: bool) -> dict[str, Any]:
    base = f"{'wss' if tls else 'ws'}://{host}:{port}"
    urls: dict[str, Any] = {key: base + path for key, path in WS_PATHS.items()}
    urls["ws-api"] = {key: base + path for key, path in WS_API_PATHS.items()}
    return urls


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Everything a client needs; ``as_dict`` is what the connection file holds."""

    host: str
    http_port: int
    https_port: int
    api_key: str
    secret: str
    ca_file: str
    sim_start_ms: int
    wall_start_ms: int
    speed: float
    symbols: tuple[str, ...]
    pid: int

    def sim_now_ms(self, wall_now_ms: int) -> int:
        """Simulated time for a wall-clock instant (the emulator's clock runs ``speed`` times faster)."""
        return self.sim_start_ms + int((wall_now_ms - self.wall_start_ms) * self.speed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": CONNECTION_VERSION,
            "host": self.host,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "api_key": self.api_key,
            "secret": self.secret,
            "ca_file": self.ca_file,
            "sim_start_ms": self.sim_start_ms,
            "wall_start_ms": self.wall_start_ms,
            "speed": self.speed,
            "symbols": list(self.symbols),
            "pid": self.pid,
            "http": {
                "rest": rest_urls(self.host, self.http_port, tls=False),
                "ws": ws_urls(self.host, self.http_port, tls=False),
            },
            "tls": {
                "rest": rest_urls(self.host, self.https_port, tls=True),
                "ws": ws_urls(self.host, self.https_port, tls=True),
            },
        }


def write_connection_file(info: ConnectionInfo, path: Path) -> Path:
    """Write atomically with mode 0600 (the file holds the emulator's API secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info.as_dict(), fh, indent=2)
    os.replace(tmp, path)
    return path


def read_connection_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a connection file written by `fundbot emulator` ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a connection file written by `fundbot emulator`")
    if data.get("version") != CONNECTION_VERSION:
        raise ValueError(f"{path}: unsupported connection file version {data.get('version')!r}")
    return data


def emulator_listening(path: Path) -> str | None:
    """None when ``path`` is a connection file whose emulator accepts connections; else why not. A file
    left by an earlier run names ports nothing listens on any more: it must not be trusted."""
    import socket

    try:
        data = read_connection_file(path)
    except FileNotFoundError:
        return f"{path}: No such file or directory"
    except (OSError, ValueError) as err:
        return str(err)
    host, port = str(data.get("host", "127.0.0.1")), int(data.get("http_port") or 0)
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError:
        return f"{path} names an emulator that is not listening on {host}:{port} (a file left by an earlier run?)"
