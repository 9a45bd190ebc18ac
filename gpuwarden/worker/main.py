"""`python -m gpuwarden.worker` / `gpuwarden worker`: generate the model if missing, serve it, inject faults.

Exit codes: 0 after SIGTERM/SIGINT, 78 (EX_CONFIG) for a bad flag value, 65 (EX_DATAERR) when the model
directory fails its checksum manifest, 134 after the crash fault (the code a shell reports for SIGABRT,
which is how a CUDA assertion ends a real worker).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time

from gpuwarden.address import parse_listen

EX_DATAERR, EX_CONFIG, CRASH_EXIT = 65, 78, 134


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT ([::1]:PORT for IPv6, port 0: any)")
    p.add_argument("--model-dir", help="model directory; generated when missing (default: a temporary dir)")
    p.add_argument("--admin-token-file", help="bearer token of the admin API (off without)")
    p.add_argument("--memory-fraction", type=float, default=0.9, help="GPU memory share for the engine")
    p.add_argument("--log-file", help="also log to this file (reopened after rotation)")
    p.add_argument("--max-concurrency", type=int, default=4, help="engine slots; further requests wait")


def _problems(args: argparse.Namespace) -> tuple[list[str], str | None]:
    problems, token = [], None
    try:
        parse_listen(args.listen)
    except ValueError as err:
        problems.append(f"--listen: {err}")
    if not 0 < args.memory_fraction <= 1:
        problems.append("--memory-fraction: must be greater than 0 and at most 1")
    if args.max_concurrency < 1:
        problems.append("--max-concurrency: must be at least 1")
    if args.model_dir and os.path.exists(args.model_dir) and not os.path.isdir(args.model_dir):
        problems.append(f"--model-dir: {args.model_dir} is not a directory")
    if args.admin_token_file:
        try:
            with open(args.admin_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as err:
            problems.append(f"--admin-token-file: cannot read {args.admin_token_file}: {err.strerror}")
        else:
            if not token:
                problems.append("--admin-token-file: the file is empty")
    return problems, token


def _logger(log_file: str | None) -> logging.Logger:
    log = logging.getLogger("gpuwarden.worker")
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        # WatchedFileHandler reopens the file after logrotate moves it (the log-rotation playbook). Imported
        # here: the CLI imports this module for its arguments, the agent included (bench/footprint.py).
        from logging.handlers import WatchedFileHandler

        handlers.append(WatchedFileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


def run(args: argparse.Namespace) -> int:
    problems, token = _problems(args)
    if args.log_file:
        try:
            open(args.log_file, "a").close()
        except OSError as err:
            problems.append(f"--log-file: cannot open {args.log_file}: {err.strerror}")
    if problems:
        for problem in problems:
            print(f"worker: config error: {problem}", file=sys.stderr)
        return EX_CONFIG
    # Heavy imports only once the flags are known good: `gpuwarden worker --help` stays fast.
    from gpuwarden.agent.http import Limits, Router
    from gpuwarden.agent.http_loop import Server
    from gpuwarden.modelfiles import ManifestError
    from gpuwarden.worker import faults, model, server
    from gpuwarden.worker.metrics import WorkerMetrics
    from gpuwarden.worker.runtime import Engine

    log = _logger(args.log_file)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="gpuwarden-worker-")
    try:
        model.ensure(model_dir)
    except ManifestError as err:
        print(f"worker: model directory {model_dir} fails verification: {err}", file=sys.stderr)
        return EX_DATAERR
    state = faults.FaultState()
    app = server.WorkerApp(
        Engine(model_dir, args.memory_fraction),
        WorkerMetrics(model.MODEL_NAME, args.memory_fraction),
        state,
        token,
        log,
        args.max_concurrency,
    )
    host, port = parse_listen(args.listen)
    # Handler threads: the engine slots plus room for requests parked by a hang fault; /metrics and the
    # admin API run on the I/O thread and answer whatever the handlers do.
    limits = Limits(handler_threads=args.max_concurrency + 16, max_body_bytes=server.MAX_BODY)
    try:
        httpd = Server(host, port, Router(app.routes()), limits, log, observe=app.observe)
    except OSError as err:
        print(f"worker: cannot listen on {args.listen}: {err.strerror}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(
        signal.SIGUSR1,
        lambda *_: state.set(faults.Fault("errors", until=time.monotonic() + faults.SIGNAL_BURST_S)),
    )
    signal.signal(signal.SIGUSR2, lambda *_: state.clear())
    httpd.start()
    shown = f"[{host}]" if ":" in host else host
    log.info("model %s in %s, provider %s", model.MODEL_NAME, model_dir, app.engine.provider)
    print(f"worker ready on http://{shown}:{httpd.address[1]}", flush=True)
    while not stop.is_set():
        if app.crash.wait(0.2):
            time.sleep(0.2)  # let the admin reply go out first
            log.critical("crash fault injected: exiting abruptly with %d", CRASH_EXIT)
            os._exit(CRASH_EXIT)
    httpd.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpuwarden.worker", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
