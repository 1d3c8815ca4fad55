"""The documented example configuration loads and matches the defaults."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "edge-agent.example.toml"


def test_example_config_loads_and_equals_the_defaults() -> None:
    from_file = load_settings(EXAMPLE)

    assert from_file == load_settings()


def test_example_config_documents_every_option() -> None:
    text = EXAMPLE.read_text()

    for section_name, field in Settings.model_fields.items():
        annotation = field.annotation
        options = getattr(annotation, "model_fields", None)
        if options is None:
            assert f"{section_name} =" in text, section_name
            continue
        assert f"[{section_name}]" in text, section_name
        for option in options:
            assert f"{option} =" in text, f"{section_name}.{option}"
