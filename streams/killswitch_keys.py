"""The shared secrets that sign kill commands: from the environment or a file, never logged.

``BURNGUARD_KILL_KEYS`` holds comma-separated keys, or ``BURNGUARD_KILL_KEYS_FILE`` names a file
with one key per line (blank lines and ``#`` comments ignored); a key is the UTF-8 bytes of its
text. The **first** key signs; every key verifies, so a key is rotated by putting the new one first
everywhere, then dropping the old one once every command signed with it has expired.

>>> keys = load_kill_keys({"BURNGUARD_KILL_KEYS": "new-secret, old-secret"})
>>> keys.signing, len(keys.all)
(b'new-secret', 2)
>>> "secret" in repr(keys) + str(keys)
False
>>> load_kill_keys({}) is None
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from detectors.config import Autonomy, BurnguardConfig

__all__ = ["KillKeys", "KillKeysError", "load_kill_keys", "may_act"]

ENV_KEYS = "BURNGUARD_KILL_KEYS"
ENV_KEYS_FILE = "BURNGUARD_KILL_KEYS_FILE"


class KillKeysError(ValueError):
    """The kill keys cannot be read, or are needed and missing; the message says what to set."""


@dataclass(frozen=True, slots=True)
class KillKeys:
    """Signing and verifying keys; their text never appears in ``repr``/``str``."""

    all: tuple[bytes, ...] = field(repr=False)

    @property
    def signing(self) -> bytes:
        return self.all[0]

    def __str__(self) -> str:
        return f"<{len(self.all)} kill key(s)>"

    def __repr__(self) -> str:
        return f"KillKeys(<{len(self.all)} key(s)>)"


def load_kill_keys(env: Mapping[str, str] | None = None) -> KillKeys | None:
    """The keys from ``BURNGUARD_KILL_KEYS`` or ``BURNGUARD_KILL_KEYS_FILE`` (``os.environ`` by
    default); ``None`` when neither is set. Raises :class:`KillKeysError` for an unreadable file or
    one without any key."""
    env = os.environ if env is None else env
    inline = env.get(ENV_KEYS, "").strip()
    path = env.get(ENV_KEYS_FILE, "").strip()
    if inline:
        texts = [k.strip() for k in inline.split(",")]
        where = ENV_KEYS
    elif path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise KillKeysError(f"{ENV_KEYS_FILE}: cannot read {path}: {exc.strerror or exc}") from None
        texts = [line.strip() for line in lines if not line.strip().startswith("#")]
        where = f"{ENV_KEYS_FILE} ({path})"
    else:
        return None
    keys = tuple(t.encode("utf-8") for t in texts if t)
    if not keys:
        raise KillKeysError(f"{where} holds no key")
    return KillKeys(keys)


def may_act(config: BurnguardConfig, autonomy: str | None) -> bool:
    """True when some workflow may be killed without a person's approval (autonomy ``act``, from the
    override or from the configuration): the worker then signs commands and needs a key."""
    if autonomy is not None:
        return Autonomy(autonomy) is Autonomy.ACT
    levels = [config.defaults.autonomy, *(o.autonomy for o in config.overrides)]
    return Autonomy.ACT in levels


def require_signing_key(
    config: BurnguardConfig, autonomy: str | None, env: Mapping[str, str] | None = None
) -> KillKeys | None:
    """The keys, or :class:`KillKeysError` when the worker may act and has none (it must not start
    and then fail to kill)."""
    keys = load_kill_keys(env)
    if keys is None and may_act(config, autonomy):
        raise KillKeysError(
            f"autonomy 'act' kills without approval and the commands must be signed: set {ENV_KEYS} "
            f"(comma-separated, the first key signs) or {ENV_KEYS_FILE} (one key per line), with the "
            "same keys as the agents' kill-switch listeners — or lower the autonomy to 'approve' or 'advise'"
        )
    return keys
