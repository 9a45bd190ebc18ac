"""gpuwarden/deferred.py: a registered module runs its body on the first name asked of it, and is then
exactly the module a normal import gives. A fresh interpreter each time: this process has them all."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_pydantic_imports_secrets_without_loading_openssl_until_a_secret_is_compared() -> None:
    out = run(
        "import sys, gpuwarden, pydantic\n"
        "from pydantic import SecretStr, BaseModel\n"
        "class M(BaseModel):\n"
        "    s: SecretStr\n"
        "print('_hashlib' in sys.modules, 'hmac' in sys.modules)\n"
        "print(M(s='x') == M(s='x'), M(s='x') == M(s='y'))\n"  # SecretStr.__eq__: secrets.compare_digest
        "print('_hashlib' in sys.modules)\n"
    )
    assert out == ["False", "False", "True", "False", "True"]


def test_a_deferred_module_is_the_normal_module_once_asked() -> None:
    out = run(
        "import gpuwarden, secrets, sys\n"
        "print(len(secrets.token_hex(8)), secrets is sys.modules['secrets'])\n"
        "print(sorted(n for n in ('choice', 'token_bytes', 'compare_digest') if n in dir(secrets)))\n"
        "try:\n"
        "    secrets.no_such_name\n"
        "except AttributeError as err:\n"
        "    print(type(err).__name__)\n"
    )
    assert out == ["16", "True", "['choice',", "'compare_digest',", "'token_bytes']", "AttributeError"]


def test_threads_asking_at_once_all_get_the_name() -> None:
    """The body runs once, under a lock: a thread that asks while another runs it waits, never sees a
    half-run module."""
    out = run(
        "import gpuwarden, secrets, threading\n"
        "got, start = [], threading.Barrier(8)\n"
        "def ask():\n"
        "    start.wait()\n"
        "    got.append(secrets.token_bytes is not None)\n"
        "ts = [threading.Thread(target=ask) for _ in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(got.count(True))\n"
    )
    assert out == ["8"]


def test_a_module_imported_before_install_is_left_alone() -> None:
    out = run(
        "import secrets, sys\n"
        "before = sys.modules['secrets']\n"
        "from gpuwarden import deferred\n"
        "deferred.install('secrets')\n"
        "print(sys.modules['secrets'] is before, '__getattr__' in vars(before))\n"
    )
    assert out == ["True", "False"]
