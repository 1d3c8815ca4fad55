"""The systemd units pass ``systemd-analyze verify`` without a single warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from local_services import BIN, ROOT

from tests.external import services_required

UNITS = sorted((ROOT / "systemd").iterdir())
# Where the units expect the installed programs, and where they are here:
# verify checks that each ExecStart= names an executable.
INSTALLED_BINS = ("/opt/edge-agent/venv/bin/", "/opt/cloud-sync/venv/bin/")


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is not installed"
        if services_required():
            pytest.fail(f"{reason}, and EDGE_TEST_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)
    return found


def _local_copy(unit: Path, folder: Path) -> Path:
    text = unit.read_text()
    for installed in INSTALLED_BINS:
        text = text.replace(installed, f"{BIN}/")
    copy = folder / unit.name
    copy.write_text(text)
    return copy


def test_every_unit_is_here() -> None:
    assert [u.name for u in UNITS] == [
        "cloud-sync.service",
        "edge-agent-backup.service",
        "edge-agent-backup.timer",
        "edge-agent.service",
    ]
    assert (BIN / "edge-agent").exists()
    assert (BIN / "cloud-sync").exists()


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies_cleanly(unit: Path, tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    for other in UNITS:
        _local_copy(other, tmp_path)

    result = subprocess.run(
        [analyze, "verify", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        timeout=30,
        # Units named by others (the timer's service) are found beside it.
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
        check=False,
    )

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == "", output


def test_verify_catches_a_mistake(tmp_path: Path) -> None:
    """The check above would see a typo: verify's warnings are not silent."""
    analyze = _systemd_analyze()
    unit = _local_copy(ROOT / "systemd" / "edge-agent.service", tmp_path)
    unit.write_text(unit.read_text().replace("ProtectHome=", "ProtectHomme="))

    result = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
        check=False,
    )

    assert "ProtectHomme" in result.stderr
