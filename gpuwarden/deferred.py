"""Modules registered at gpuwarden's import whose body runs only when someone asks them for a name.

Two imports cost the agent memory for code its default start never runs (`python bench/footprint.py`,
issue 15: at most 40 MB without a GPU, 60 MB with one):

- `prometheus_client`: the package `__init__` imports `prometheus_client.exposition` and with it ssl,
  http.server, urllib.request and wsgiref (the library's HTTP servers and push client): 2.8 MB. The agent
  uses only submodules that need none of that (metrics_core, samples, registry, process_collector,
  parser, utils) and renders with `gpuwarden.promtext`.
- `secrets`: `pydantic.types` imports it to compare `SecretStr` values (the agent's config has none), and
  `secrets` imports `hmac`, which loads OpenSSL's libcrypto through `_hashlib`: 3.5 MB resident on an
  H200 node, 3.4 MB here, for a library nothing else of the default agent loads.

`install(name)` registers the module without running it. `import name` then finds it registered and
returns it as it is; so do a package's own submodules (`from . import values`: the import system loads
the submodule once told the package lacks it). The first time anyone asks the module for a name its body
defines (`secrets.compare_digest`, a test's `from prometheus_client import generate_latest`), the real
body runs into the same module object, and from then on everything is exactly as after a normal import.
A module imported before `install` stays as it is: there is nothing to save.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any


def install(name: str) -> None:
    if name in sys.modules:
        return  # already imported, normally or by an earlier install()
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return  # not installed: the first import raises the usual error
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    is_package = spec.submodule_search_locations is not None
    lock = threading.RLock()
    completed = False

    def __getattr__(attr: str) -> Any:
        nonlocal completed
        if not completed and is_package and importlib.util.find_spec(f"{name}.{attr}") is not None:
            raise AttributeError(attr)  # a submodule being imported: not a reason to run the body
        with lock:
            if not completed:
                completed = True  # set first: `from . import x` inside the body asks again (same thread)
                loader.exec_module(module)
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562: asked only for missing names
    sys.modules[name] = module
