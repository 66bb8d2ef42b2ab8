"""Silences: time-limited mutes matched like routes, kept on the compacted silences topic (what
every ``burnguard alerter`` follows) or, offline, in a JSON file.

``burnguard silence add|list|expire`` writes the topic (streams.silences_topic) when a broker is
configured, or the file given with ``--file``. The alerter applies each topic record with
:meth:`SilenceStore.apply` as it arrives; a file is reread by :meth:`SilenceStore.refresh` (cheap:
only when it changed). A silence mutes the firing anomalies it matches between ``starts_at`` and
``ends_at``; they are still grouped, so when the silence ends before they resolve, the next group
tick notifies them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerting.matchers import Matchers

__all__ = ["Silence", "SilenceStore", "SilencesFileError"]

log = logging.getLogger("burnguard.alerting")


class SilencesFileError(ValueError):
    """The silences file cannot be read or written; the message says which file and why."""


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    silence_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    matchers: Matchers
    starts_at: float = Field(description="epoch seconds")
    ends_at: float = Field(description="epoch seconds")
    created_by: str = ""
    comment: str = ""

    @model_validator(mode="after")
    def _sane(self) -> Silence:
        if self.matchers.empty:
            raise ValueError("a silence needs at least one matcher (it would mute everything)")
        if self.ends_at <= self.starts_at:
            raise ValueError("a silence must end after it starts")
        return self

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def ended(self, now: float) -> Silence:
        """This silence ending at ``now`` (epoch seconds), or unchanged if it ended before."""
        return self.model_copy(update={"ends_at": min(self.ends_at, max(now, self.starts_at + 1e-3))})

    def conditions(self) -> str:
        """The matchers as typed on the command line: ``workflow=x severity=~warning|info``."""
        parts = [f"{k}={v}" for k, v in self.matchers.match.items()]
        return " ".join(parts + [f"{k}=~{v}" for k, v in self.matchers.match_re.items()])


class SilenceStore:
    """The silences: those of the file (``silences``; written atomically when ``path`` is given)
    and those applied from the silences topic (``remote``); both are obeyed."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.silences: dict[str, Silence] = {}
        self.remote: dict[str, Silence] = {}
        self._mtime: float | None = None
        self._started = False
        self.refresh()  # a bad file at the start is an error; later, the last good read stands
        self._started = True

    def refresh(self) -> None:
        """Reread the file if it changed since the last read; :class:`SilencesFileError` if it
        cannot be read or is not a list of silences."""
        if self.path is None or not self.path.exists():
            return
        if self.path.is_dir():
            raise SilencesFileError(f"silences file {self.path} is a directory; give a file path with --file")
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            silences = self._read(self.path)
        except (OSError, SilencesFileError) as exc:
            error = exc if isinstance(exc, SilencesFileError) else SilencesFileError(
                f"cannot read silences file {self.path}: {exc.strerror or exc}"
            )
            if not self._started:
                raise error from None
            log.warning("%s; the silences read before stay in force", error)
            if isinstance(exc, SilencesFileError):
                self._mtime = mtime  # said once per version of the file, not on every tick
            return
        self.silences = {s.silence_id: s for s in silences}
        self._mtime = mtime

    @staticmethod
    def _read(path: Path) -> list[Silence]:
        """The silences in ``path``; :class:`SilencesFileError` saying what is wrong with it."""
        fix = "fix or remove it (burnguard silence add writes a new one)"
        try:
            raw = json.loads(path.read_text(encoding="utf-8") or "[]")
        except OSError as exc:
            raise SilencesFileError(f"cannot read silences file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SilencesFileError(f"silences file {path} is not text (binary data?); {fix}") from None
        except json.JSONDecodeError as exc:
            raise SilencesFileError(
                f"silences file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {fix}"
            ) from None
        if not isinstance(raw, list):
            raise SilencesFileError(f"silences file {path} must hold a JSON list of silences; {fix}")
        silences = []
        for i, item in enumerate(raw):
            try:
                silences.append(Silence.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "silence"
                raise SilencesFileError(
                    f"silences file {path}: silence #{i + 1} is invalid ({where}: {err['msg']}); {fix}"
                ) from None
        return silences

    def _save(self) -> None:
        if self.path is None:
            return
        data = json.dumps([s.model_dump(mode="json") for s in self.silences.values()], indent=2).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a temporary file of its own beside the target, on disk before it replaces the file:
            # a crash or a full disk leaves the previous silences, never half of the new ones
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise SilencesFileError(f"cannot write silences file {self.path}: {exc.strerror or exc}") from None
        self._mtime = self.path.stat().st_mtime

    def apply(self, silence: Silence) -> None:
        """A silence read from the silences topic (a newer record of an id replaces the older)."""
        self.remote[silence.silence_id] = silence

    def _all(self) -> list[Silence]:
        return [*self.remote.values(), *self.silences.values()]

    def add(self, silence: Silence) -> Silence:
        self.refresh()
        self.silences[silence.silence_id] = silence
        self._save()
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        """End a silence now (kept in the file, inactive). ``KeyError`` for an unknown id."""
        self.refresh()
        ended = self.silences[silence_id].ended(now)
        self.silences[silence_id] = ended
        self._save()
        return ended

    def list(self, now: float, *, include_expired: bool = False) -> list[Silence]:
        self.refresh()
        found = [s for s in self._all() if include_expired or now < s.ends_at]
        return sorted(found, key=lambda s: (s.starts_at, s.silence_id))

    def silencing(self, labels: dict[str, str], now: float) -> Silence | None:
        """The first active silence that matches these labels, if any."""
        return next((s for s in self._all() if s.active(now) and s.matchers.matches(labels)), None)
