"""Logging: human-readable lines by default, one JSON object per line with --log-format json.

Every line the agent writes goes through here: its own loggers, the libraries' (kazoo, at
warning and above), Python warnings, and an exception that escapes a thread. Client misbehaviour is never
logged per event (a flood would drown the journal): the HTTP layer counts it in
`gpuwarden_http_client_errors_total{reason}`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Structured events (health transitions) put their fields beside the message: one object per line.
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(level: str, fmt: str) -> logging.Logger:
    log = logging.getLogger("gpuwarden")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False
    # Libraries log to the root logger; without a handler there, Python prints their warnings raw.
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "gpuwarden", False)]
    library = logging.StreamHandler(sys.stderr)
    library.setFormatter(handler.formatter)
    library.setLevel(logging.WARNING)
    library.gpuwarden = True  # type: ignore[attr-defined]
    root.addHandler(library)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception
    return log


def _log_uncaught(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("gpuwarden").critical("uncaught %s: %s", kind.__name__, err, exc_info=(kind, err, tb))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("gpuwarden").error(
        "thread %s died: %s: %s",
        name,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
