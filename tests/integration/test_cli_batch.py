"""``llm-connectors batch``: submit a JSONL file, wait with progress, status, results, cancel, list."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_connectors import cli
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_batch_wire import ClaudeBatchFake


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def claude(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeServer, ClaudeBatchFake]]:
    fake = ClaudeBatchFake(polls=2, outcomes={"b": "errored"})
    with FakeServer(fake) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        yield server, fake


def _items(tmp_path: Path) -> str:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"custom_id": "a", "messages": "Hello", "max_tokens": 32}) + "\n\n"
                    + json.dumps({"custom_id": "b", "messages": [{"role": "user", "content": "Hi"}]}) + "\n")
    return str(path)


def test_submit_wait_status_results_list_cancel(claude: tuple[FakeServer, ClaudeBatchFake], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, fake = claude
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = cli.main(["batch", "submit", _items(tmp_path), "-p", "claude", "-m", "claude-haiku-4-5", "--wait",
                     "--poll", "0.001", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    status = json.loads(out)
    assert status["status"] == "completed" and status["counts"]["succeeded"] == 1 and status["counts"]["errored"] == 1
    assert f"batch {status['id']} [" in terminal.getvalue() and "2/2" in terminal.getvalue()  # the progress bar
    sent = server.requests[0].json()["requests"]
    assert [r["params"]["model"] for r in sent] == ["claude-haiku-4-5"] * 2
    assert cli.main(["batch", "results", status["id"], "-p", "claude"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["custom_id"] == "a" and lines[0]["content"] == "Hello from the fake Claude."
    assert lines[1]["custom_id"] == "b" and lines[1]["error"]["type"] == "ProviderError"
    assert cli.main(["batch", "status", status["id"], "-p", "claude"]) == 0
    assert capsys.readouterr().out == f"{status['id']}\tcompleted\t2/2 done, 1 errored\n"
    fake.polls = 5
    assert cli.main(["batch", "submit", _items(tmp_path), "-p", "claude"]) == 0
    second = capsys.readouterr().out.split("\t")[0]
    assert cli.main(["batch", "cancel", second, "-p", "claude", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelling"
    assert cli.main(["batch", "list", "-p", "claude"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [second, status["id"]]


def test_usage_mistakes_exit_2_before_any_request(claude: tuple[FakeServer, ClaudeBatchFake], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = claude
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert cli.main(["batch", "submit", str(bad), "-p", "claude"]) == 2
    assert cli.main(["batch", "submit", str(tmp_path / "missing.jsonl"), "-p", "claude"]) == 2
    assert cli.main(["batch", "status", "-p", "claude"]) == 2
    assert cli.main(["batch", "list"]) == 2
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"custom_id": "a", "messages": "x"}\n{"custom_id": "a", "messages": "y"}\n')
    assert cli.main(["batch", "submit", str(dup), "-p", "claude"]) == 2
    assert "used twice" in capsys.readouterr().err
    assert cli.main(["batch", "list", "-p", "ollama"]) == 2  # no batch API: unsupported capability
    assert server.requests == []
