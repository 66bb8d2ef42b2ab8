from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from alerting.silences import SilenceStore
from burnguard.cli import app


def test_silence_add_list_expire(tmp_path: Path) -> None:
    runner = CliRunner()
    file = str(tmp_path / "silences.json")
    added = runner.invoke(
        app, ["silence", "add", "-m", "workflow=support-triage", "--match-re", "severity=warning|info",
              "--duration", "30m", "--by", "ana", "--comment", "deploy", "--file", file],
    )
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    (silence,) = SilenceStore(file).silences.values()
    assert silence.silence_id == silence_id and silence.ends_at - silence.starts_at == 1800
    listed = runner.invoke(app, ["silence", "list", "--file", file])
    assert silence_id in listed.stdout and "workflow=support-triage" in listed.stdout
    assert runner.invoke(app, ["silence", "expire", silence_id, "--file", file]).exit_code == 0
    assert silence_id not in runner.invoke(app, ["silence", "list", "--file", file]).stdout
    assert runner.invoke(app, ["silence", "expire", "nope", "--file", file]).exit_code == 1
    bad = runner.invoke(app, ["silence", "add", "-m", "wrkflow=x", "--file", file])
    assert bad.exit_code == 2 and "unknown label" in bad.output
