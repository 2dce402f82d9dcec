"""The `templates:` section of config.yaml: the render budget of every prompt template.

::

    # $INGOT_HOME/config.yaml
    templates:
      max_render_time: 5s            # a number of seconds or a duration (500ms, 5s)
      max_output_bytes: 16777216     # bytes (16 MiB)
      max_loop_iterations: 1000000   # all range/for loops of one render together
      max_nesting_depth: 64          # nested blocks and template/macro calls

Every key is optional; what is left out keeps its default
(`ingot.modelfile.template.DEFAULT_BUDGET`). See docs/templates.md.
"""

from __future__ import annotations

import dataclasses

from ingot.daemon.watch.yamlnodes import YamlValue
from ingot.modelfile.template import BUDGET_KEYS, DEFAULT_BUDGET, RenderBudget

__all__ = ["parse_templates_section"]


def parse_templates_section(value: YamlValue) -> RenderBudget:
    """The `templates:` section as a `RenderBudget`; ConfigError at the offending key."""
    fields = value.mapping(BUDGET_KEYS)
    changes: dict[str, float | int] = {}
    if "max_render_time" in fields:
        changes["max_render_time"] = fields["max_render_time"].duration(minimum=0.001)
    for key in ("max_output_bytes", "max_loop_iterations", "max_nesting_depth"):
        if key in fields:
            changes[key] = fields[key].integer(minimum=1)
    return dataclasses.replace(DEFAULT_BUDGET, **changes)
