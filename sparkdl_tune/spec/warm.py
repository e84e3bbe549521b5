"""The channel between the driver and warm ranks (ranks that train trial after trial).

Each rank's process opens one TCP connection to the driver's :class:`WarmAddress` and says who
it is: ``{"token", "rank"}``. The driver checks the token before it reads anything else from
that connection. Then, trial after trial, the driver sends a job and the rank answers with its
``(RankReport, TrainResult or None)``; a ``None`` job ends the rank. Frames are a 4-byte
big-endian length and a pickle (a job and a result carry dataclasses and numpy weights, not
JSON). The handshake is JSON, so the driver unpickles nothing from a stranger.
"""

from __future__ import annotations

import json
import pickle
import socket
import struct
from dataclasses import dataclass
from typing import Any

ENV = "SPARKDL_TUNE_WARM"  # the child's environment: the address as JSON
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class WarmAddress:
    """Where the warm ranks of one search ask for their jobs."""

    host: str
    port: int
    token: str

    def to_env(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_env(cls, text: str) -> WarmAddress:
        return cls(**json.loads(text))


def send(sock: socket.socket, thing: Any) -> None:
    """One pickled frame."""
    data = pickle.dumps(thing, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def receive(sock: socket.socket) -> Any:
    """The next pickled frame; ``ConnectionError`` when the peer has gone."""
    (length,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
    return pickle.loads(_exactly(sock, length))


def hello(sock: socket.socket, token: str, rank: int) -> None:
    """The rank's first line: its token and rank."""
    sock.sendall((json.dumps({"token": token, "rank": rank}) + "\n").encode())


def read_hello(sock: socket.socket, token: str) -> int:
    """The rank that says hello on ``sock``; ``ValueError`` for a wrong token or a bad line."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk or len(line) > 1024:
            raise ValueError("no hello")
        line += chunk
    message = json.loads(line.decode())
    if not isinstance(message, dict) or message.get("token") != token:
        raise ValueError("wrong token")
    return int(message["rank"])


def _exactly(sock: socket.socket, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
