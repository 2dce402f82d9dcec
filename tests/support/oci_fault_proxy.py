"""A threaded loopback TCP proxy that breaks transfers on purpose.

It sits between ingot and a real registry and forwards bytes both ways. Armed
faults act on one direction of a connection (`down`: registry -> client,
`up`: client -> registry) once that direction has carried `after` bytes:

- `cut(after)`: close both sockets there (a dropped connection mid-blob);
- `corrupt(after)`: flip one bit of the byte at that position (a silent
  corruption that only the digest check can catch);
- `stall(after)`: stop forwarding there but keep the connection open (a
  registry or network that hangs mid-blob: only a read timeout notices).

Each armed fault fires on `times` connections, then the proxy is clean again.
`refuse(n, status)` answers the next `n` new connections with that HTTP
status (and `Retry-After`) without reaching the registry, like an overloaded
front end. `bytes_down` / `bytes_up` count everything forwarded, for
asserting that a resume did not start over.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

__all__ = ["FaultProxy"]

_BUFFER = 256 * 1024


@dataclass
class _Fault:
    kind: str  # "cut" | "corrupt" | "stall"
    after: int
    times: int
    direction: str  # "down" | "up"


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._closed = threading.Event()
        self.bytes_down = 0
        self.bytes_up = 0
        self.faults_fired = 0
        self._refusals: list[tuple[int, str | None]] = []
        self.refused = 0
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        accept = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        accept.start()
        self._threads.append(accept)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self, after: int, *, times: int = 1, direction: str = "down") -> None:
        with self._lock:
            self._fault = _Fault("cut", after, times, direction)

    def corrupt(self, after: int, *, times: int = 1, direction: str = "down") -> None:
        with self._lock:
            self._fault = _Fault("corrupt", after, times, direction)

    def stall(self, after: int, *, times: int = 1, direction: str = "down") -> None:
        with self._lock:
            self._fault = _Fault("stall", after, times, direction)

    def refuse(self, count: int, *, status: int = 503, retry_after: str | None = "0") -> None:
        with self._lock:
            self._refusals = [(status, retry_after)] * count

    def clear(self) -> None:
        with self._lock:
            self._fault = None
            self._refusals = []

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_down = 0
            self.bytes_up = 0
            self.faults_fired = 0
            self.refused = 0

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusal = self._refusals.pop(0) if self._refusals else None
            if refusal is not None:
                threading.Thread(target=self._answer_refusal, args=(client, *refusal), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            up = threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True)
            down = threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True)
            up.start()
            down.start()

    @staticmethod
    def _shut(*sockets: socket.socket) -> None:
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _answer_refusal(self, client: socket.socket, status: int, retry_after: str | None) -> None:
        try:
            client.settimeout(5)
            received = b""
            while b"\r\n\r\n" not in received:
                data = client.recv(_BUFFER)
                if not data:
                    break
                received += data
            head = f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n"
            if retry_after is not None:
                head += f"Retry-After: {retry_after}\r\n"
            with self._lock:  # counted before answering: the client may act on the answer at once
                self.refused += 1
            client.sendall((head + "\r\n").encode())
        except OSError:
            pass
        finally:
            self._shut(client)

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        carried = 0
        try:
            while True:
                data = source.recv(_BUFFER)
                if not data:
                    break
                with self._lock:
                    fault = self._fault
                    if (
                        fault is not None
                        and fault.direction == direction
                        and carried <= fault.after < carried + len(data)
                    ):
                        fault.times -= 1
                        if fault.times <= 0:
                            self._fault = None
                        self.faults_fired += 1
                        position = fault.after - carried
                        if fault.kind in ("cut", "stall"):
                            data = data[:position]
                        else:
                            data = data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]
                    else:
                        fault = None
                    if direction == "down":
                        self.bytes_down += len(data)
                    else:
                        self.bytes_up += len(data)
                if data:
                    sink.sendall(data)
                carried += len(data)
                if fault is not None and fault.kind == "cut":
                    break
                if fault is not None and fault.kind == "stall":
                    # Hold both sockets open, silent, until the reader gives up (closing its side ends
                    # the other pump, which shuts both) or the proxy closes.
                    self._closed.wait()
                    break
        except OSError:
            pass
        finally:
            self._shut(source, sink)
