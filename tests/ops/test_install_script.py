"""scripts/install.sh into a temporary root: the tree, idempotence, uninstall."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from local_services import BIN, ROOT

from tests.external import services_required

SCRIPT = ROOT / "scripts" / "install.sh"
UNITS = ["edge-agent.service", "edge-agent-backup.service", "edge-agent-backup.timer"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, so the installs below need no package index."""
    folder = tmp_path_factory.mktemp("wheel")
    args = [str(BIN / "pip"), "wheel", "--quiet", "--no-deps", "-w", str(folder)]
    built = subprocess.run(
        [*args, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        # Building needs the build backend from the package index.
        reason = f"cannot build a wheel: {built.stderr.strip().splitlines()[-1:]}"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return next(folder.glob("*.whl"))


def _install(target: Path, *args: str, code: int = 0) -> str:
    fixed = ["--root", str(target), "--no-systemctl", "--no-user"]
    result = subprocess.run(
        ["bash", str(SCRIPT), *fixed, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout + result.stderr


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_install_twice_then_uninstall_keeps_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "root"
    options = ["--wheel", str(wheel), "--python", str(BIN / "python")]
    options += ["--pip-arg", "--no-deps", "--pip-arg", "--no-index"]

    _install(target, *options)
    config = target / "etc/edge-agent/edge-agent.toml"
    state = target / "var/lib/edge-agent"
    config.write_text(config.read_text() + "# site notes\n")
    (state / "edge-agent.sqlite3").write_bytes(b"data")
    again = _install(target, *options)

    assert "Kept" in again
    assert (target / "opt/edge-agent/venv/bin/edge-agent").is_file()
    assert config.read_text().endswith("# site notes\n")
    assert _mode(config) == 0o640
    assert _mode(state) == 0o700
    credentials = target / "etc/edge-agent/credentials"
    assert _mode(credentials) == 0o700
    assert sorted(p.name for p in credentials.iterdir()) == [
        "recognizer-api-key",
        "site-token",
    ]
    assert _mode(credentials / "site-token") == 0o600
    for unit in UNITS:
        installed = target / "etc/systemd/system" / unit
        assert installed.read_text() == (ROOT / "systemd" / unit).read_text()
    share = target / "opt/edge-agent/share/edge-agent"
    assert (share / "edge-agent.example.toml").is_file()

    removed = _install(target, "--uninstall")

    assert "kept" in removed
    assert not (target / "opt/edge-agent").exists()
    assert not any((target / "etc/systemd/system").iterdir())
    assert config.read_text().endswith("# site notes\n")
    assert (state / "edge-agent.sqlite3").read_bytes() == b"data"

    _install(target, "--uninstall", "--purge")

    assert not (target / "etc/edge-agent").exists()
    assert not state.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--purge"], "--purge goes with --uninstall", id="purge-alone"),
        pytest.param(["--wheel", "/nonexistent.whl"], "no wheel at", id="no-wheel"),
        pytest.param(["--frobnicate"], "unknown option", id="unknown"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    output = _install(tmp_path / "root", *args, code=1)

    assert message in output
    assert not (tmp_path / "root").exists()
