"""The template: shipped identical, documents every setting with its real default, never valid."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import json5

from oco.config import Settings, template_text

ROOT = Path(__file__).parents[2]


def test_top_level_and_packaged_templates_are_identical() -> None:
    assert (ROOT / "workers.template.jsonc").read_text(encoding="utf-8") == template_text()


def test_the_commented_settings_block_shows_every_default() -> None:
    block = re.search(r'// "settings": \{\n(.*?)\n\s*// \},', template_text(), re.S)
    assert block is not None
    body = "\n".join(re.sub(r"^\s*// ?", "", line) for line in block.group(1).splitlines())
    shown = json5.loads("{\n" + body + "\n}")
    assert shown == attrs.asdict(Settings())


def test_the_readme_documents_every_setting_and_entry_field() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in [f.name for f in attrs.fields(Settings)]:
        assert f"`{name}`" in readme, name
    for name in [
        "token",
        "working_directory",
        "convex_url",
        "name",
        "enabled",
        "WORKER_TOKEN",
        "CONVEX_URL",
        "OCO_CONFIG",
        "XDG_STATE_HOME",
    ]:
        assert f"`{name}`" in readme, name
