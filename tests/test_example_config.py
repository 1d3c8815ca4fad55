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
        _assert_documented(text, section_name, field.annotation)


def _assert_documented(text: str, name: str, annotation: object) -> None:
    """A plain option appears as ``name =``; a section as ``[name]`` with all of
    its own options, nested sections included."""
    options = getattr(annotation, "model_fields", None)
    if options is None:
        assert f"{name.rsplit('.', 1)[-1]} =" in text, name
        return
    leaf = name.rsplit(".", 1)[-1]
    if "." in name and f"{leaf} = {{" in text:
        return  # an inline table, such as camera = { per_s = 10.0, burst = 20 }
    assert f"[{name}]" in text, name
    for option, field in options.items():
        _assert_documented(text, f"{name}.{option}", field.annotation)
