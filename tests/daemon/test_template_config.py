"""config.yaml's `templates:` section: the render budget, and one precise error (file:line:col) per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingot.daemon.config import ConfigError, load_daemon_config, load_template_budget
from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget
from ingot.registry.home import IngotHome


def _home(tmp_path: Path, text: str | None) -> IngotHome:
    home = IngotHome(tmp_path)
    if text is not None:
        home.path("config.yaml").write_text(text)
    return home


def test_no_file_or_no_section_means_the_defaults(tmp_path: Path) -> None:
    assert load_daemon_config(_home(tmp_path, None)).templates == DEFAULT_BUDGET
    assert load_template_budget(_home(tmp_path, "templates:\n")) == DEFAULT_BUDGET


def test_every_limit_can_be_set_and_the_rest_keep_their_defaults(tmp_path: Path) -> None:
    home = _home(tmp_path, "templates:\n  max_render_time: 500ms\n  max_output_bytes: 1048576\n"
                           "  max_loop_iterations: 5000\n  max_nesting_depth: 12\n")
    assert load_daemon_config(home).templates == RenderBudget(0.5, 1048576, 5000, 12)
    assert load_template_budget(_home(tmp_path, "templates:\n  max_render_time: 3\n")) == RenderBudget(
        max_render_time=3.0)


@pytest.mark.parametrize(("text", "where", "fragment"), [
    ("templates:\n  max_loop_iteration: 5\n", ":2:3:", "did you mean 'max_loop_iterations'"),
    ("templates:\n  max_nesting_depth: 0\n", ":2:22:", "must be at least 1"),
    ("templates:\n  max_output_bytes: lots\n", ":2:21:", "expected a whole number"),
    ("templates:\n  max_render_time: soon\n", ":2:20:", "invalid duration"),
    ("templates: [1]\n", ":1:12:", "expected a mapping"),
])
def test_mistakes_are_one_error_at_their_place(tmp_path: Path, text: str, where: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_daemon_config(_home(tmp_path, text))
    message = str(caught.value)
    assert f"config.yaml{where}" in message and fragment in message
