"""A real local HTTP server that behaves like a broken or hostile scrape target, one behaviour per path.

The first path segment picks the behaviour (`/endless/v1/models` is `/endless`), so a base URL works too.

/good         a vLLM exposition (tests/fixtures/inference/vllm-0.prom)
/endless      a chunked body of valid exposition lines that never ends
/gzip-bomb    `Content-Encoding: gzip`, ~1 KB on the wire per MB inflated, never ending
/big          a 50 MB exposition with a Content-Length
/many-series  a few MB of series of one metric the vLLM profile reads (100,000 series)
/trickle      headers, then one byte of body every 0.2 s
/slow-headers one byte of the status line every 0.2 s
/html         an HTML page with status 200
/garbage      random bytes with status 200
/redirect-other  302 to the same server under another host name (localhost)
/redirect-same   302 to /good on the same host
/not-gzip     says gzip, sends plain text
/cut-gzip     a gzip body cut before its end
/two-members  two gzip members one after the other (what `cat a.gz b.gz` gives)
/metrics      whichever of the above `mode` names (the test switches it while the agent scrapes)
"""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GOOD = (Path(__file__).resolve().parent / "fixtures" / "inference" / "vllm-0.prom").read_bytes()
LINE = b'vllm:num_requests_running{model_name="m"} 1\n'
MB = 1 << 20


def _bomb_parts() -> tuple[bytes, bytes]:
    """A gzip header + first block, and a block that may be repeated forever (each inflates to 1 MB).

    A full flush resets the compressor's history, so every later block is independent and identical.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MB)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return head, block


BOMB_HEAD, BOMB_BLOCK = _bomb_parts()


class HostileTarget:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.mode = "good"
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                target.requests.append(self.path)
                # A broken pipe is the agent giving up, as it should.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(self, "_" + self.path.strip("/").split("/")[0].replace("-", "_"))()

            do_POST = do_GET  # noqa: N815

            def _head(
                self, status: int = 200, ctype: str = "text/plain; version=0.0.4", **extra: Any
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for key, value in extra.items():
                    self.send_header(key.replace("_", "-"), str(value))
                self.end_headers()

            def _send(self, body: bytes, status: int = 200, ctype: str = "text/plain; version=0.0.4") -> None:
                self._head(status, ctype, Content_Length=len(body))
                self.wfile.write(body)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

            def _metrics(self) -> None:
                getattr(self, "_" + target.mode.replace("-", "_"))()

            def _good(self) -> None:
                self._send(GOOD)

            def _endless(self) -> None:
                self._head(Transfer_Encoding="chunked")
                block = LINE * 1000
                while True:
                    self._chunk(block)

            def _gzip_bomb(self) -> None:
                self._head(Transfer_Encoding="chunked", Content_Encoding="gzip")
                self._chunk(BOMB_HEAD)
                while True:
                    self._chunk(BOMB_BLOCK * 16)

            def _big(self) -> None:
                block = LINE * 1000  # written block by block: the server itself stays small
                blocks = 50 * MB // len(block)
                self._head(Content_Length=blocks * len(block))
                for _ in range(blocks):
                    self.wfile.write(block)

            def _many_series(self) -> None:
                lines = b"".join(
                    b'vllm:num_requests_running{model_name="m%d"} 1\n' % i for i in range(100_000)
                )
                self._send(b"# TYPE vllm:num_requests_running gauge\n" + lines)

            def _trickle(self) -> None:
                self._head(Transfer_Encoding="chunked")
                while True:
                    self._chunk(b"#")
                    self.wfile.flush()
                    time.sleep(0.2)

            def _slow_headers(self) -> None:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)

            def _html(self) -> None:
                self._send(b"<!doctype html><html><body><h1>Welcome</h1></body></html>\n", ctype="text/html")

            def _garbage(self) -> None:
                self._send(random.Random(7).randbytes(4096), ctype="application/octet-stream")

            def _redirect_other(self) -> None:
                self._head(302, Location=f"http://localhost:{target.port}/good", Content_Length=0)

            def _redirect_same(self) -> None:
                self._head(302, Location="/good", Content_Length=0)

            def _not_gzip(self) -> None:
                self._head(Content_Encoding="gzip", Content_Length=len(GOOD))
                self.wfile.write(GOOD)

            def _cut_gzip(self) -> None:
                whole = gzip.compress(GOOD)
                body = whole[: len(whole) // 2]
                self._head(Content_Encoding="gzip", Content_Length=len(body))
                self.wfile.write(body)

            def _two_members(self) -> None:
                body = gzip.compress(GOOD) + gzip.compress(GOOD)
                self._head(Content_Encoding="gzip", Content_Length=len(body))
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # serve for a manual look: python -m tests.hostile_target
    t = HostileTarget()
    print(t.base, os.getpid(), flush=True)
    threading.Event().wait()
