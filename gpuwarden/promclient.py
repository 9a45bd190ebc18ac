"""prometheus_client's metric model and parser, without its HTTP servers: `install()` at gpuwarden's import.

Importing any part of prometheus_client first runs its package `__init__`, which imports
`prometheus_client.exposition` and with it ssl, http.server, urllib.request and wsgiref (the library's
HTTP servers and push client): 2.8 MB of an agent that must stay under 40 MB and serves /metrics itself
(`python bench/footprint.py`, issue 15). The agent uses only submodules that need none of that
(metrics_core, samples, registry, process_collector, parser, utils) and renders with
`gpuwarden.promtext`.

`install()` registers the package without running its `__init__`, so those submodules import on their
own. The first time anyone asks the package for a name only `__init__` defines (a test's
`from prometheus_client import generate_latest`, a library's), the real `__init__` runs into the same
module object, and from then on everything is exactly as after a normal import.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any


def install() -> None:
    if "prometheus_client" in sys.modules:
        return  # already imported, normally or by an earlier install(): nothing to save
    spec = importlib.util.find_spec("prometheus_client")
    if spec is None or spec.loader is None:
        return  # not installed: the first import raises the usual error
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)
    lock = threading.RLock()
    completed = False

    def __getattr__(name: str) -> Any:
        nonlocal completed
        if not completed and importlib.util.find_spec(f"prometheus_client.{name}") is not None:
            # `from . import values` in a submodule: not a reason to run __init__; the import system
            # loads the submodule once told the package lacks it.
            raise AttributeError(name)
        with lock:
            if not completed:
                completed = True  # set first: `from . import x` inside __init__ asks again (same thread)
                loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'prometheus_client' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562: asked only for missing names
    sys.modules["prometheus_client"] = package
