"""The shared secrets kill commands are signed with: several at once, so keys can rotate.

A key is the UTF-8 bytes of one line. They come from the ``secrets`` argument, else the environment
variable ``BURNGUARD_KILL_KEYS`` (comma-separated), else the file named by ``BURNGUARD_KILL_KEYS_FILE``
(one key per line; blank lines and ``#`` comments ignored), exactly as the worker reads them.
Surrounding spaces are not part of a key. :class:`KillKeys` never shows them: not in its repr, not
in errors, not in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["KEYS_ENV", "KEYS_FILE_ENV", "KillKeys", "load_kill_keys"]

KEYS_ENV = "BURNGUARD_KILL_KEYS"
KEYS_FILE_ENV = "BURNGUARD_KILL_KEYS_FILE"


class KillKeys:
    """Accepted signing keys, the first being the current one. Holds bytes; shows only how many.

    >>> keys = KillKeys(["new-key", "old-key"])
    >>> keys
    KillKeys(<2 keys>)
    >>> keys.verify(b"payload", keys.sign(b"payload"))
    True
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        cleaned = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        self._keys = tuple(k for k in cleaned if k)
        if not self._keys:
            raise ValueError(f"no kill-switch key given: pass secrets=[...], or set {KEYS_ENV} or {KEYS_FILE_ENV}")

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KillKeys(<{len(self._keys)} keys>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("kill-switch keys are not picklable")

    def sign(self, payload: bytes) -> str:
        """Hex HMAC-SHA256 of ``payload`` under the current (first) key."""
        return hmac.new(self._keys[0], payload, hashlib.sha256).hexdigest()

    def verify(self, payload: bytes, signature: str) -> bool:
        """Whether ``signature`` is the HMAC of ``payload`` under any accepted key (constant time)."""
        given = signature.encode("utf-8", "surrogatepass")  # bytes: compare_digest refuses non-ASCII str
        ok = False
        for key in self._keys:  # every key is tried, so timing does not tell which one matched
            ok |= hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).hexdigest().encode(), given)
        return ok


def load_kill_keys(
    secrets: Iterable[str | bytes] | KillKeys | None = None, env: Mapping[str, str] | None = None
) -> KillKeys:
    """The keys from ``secrets``, else ``BURNGUARD_KILL_KEYS``, else ``BURNGUARD_KILL_KEYS_FILE``."""
    if isinstance(secrets, KillKeys):
        return secrets
    if secrets is not None:
        return KillKeys(secrets)
    env = os.environ if env is None else env
    if env.get(KEYS_ENV, "").strip():
        return KillKeys(part.strip() for part in env[KEYS_ENV].split(","))
    path = env.get(KEYS_FILE_ENV, "").strip()
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {KEYS_FILE_ENV} ({path}): {exc.strerror}") from None
        return KillKeys(line.strip() for line in text.splitlines() if not line.strip().startswith("#"))
    return KillKeys(())
