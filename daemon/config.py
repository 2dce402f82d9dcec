"""The daemon's configuration file: `$INGOT_HOME/config.yaml` (optional).

::

    # $INGOT_HOME/config.yaml
    watch:                 # GitOps: build, push and hot-swap the models a folder declares
      dir: ~/models
      push: [localhost:5000/team]
    templates:             # the render budget of every prompt template
      max_render_time: 5s
    http:                  # the HTTP API's Host names and body cap
      allowed_hosts: [ingot.lan]
    streams:               # streams whose client reads nothing are cancelled after this
      write_stall_timeout: 60s

Sections (each documented where it is parsed):

| section | parsed by | docs |
|---|---|---|
| `watch` | `ingot.daemon.watch.settings.parse_watch_section` | docs/gitops.md |
| `templates` | `ingot.daemon.template_settings.parse_templates_section` | docs/templates.md |
| `http`, `streams` | `ingot.daemon.limits` | docs/http.md |

Every problem is one `ConfigError` whose message starts with
`config.yaml:LINE:COL:` (from PyYAML's marks) and carries a hint; unknown
keys get a "did you mean". A missing file is no configuration, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingot.daemon.limits import ClientLimits, parse_http_section, parse_streams_section
from ingot.daemon.watch.errors import ConfigError
from ingot.daemon.watch.settings import WatchConfig, parse_watch_section
from ingot.daemon.watch.yamlnodes import load_yaml_file
from ingot.daemon.template_settings import parse_templates_section
from ingot.modelfile.template import DEFAULT_BUDGET, RenderBudget
from ingot.registry.home import IngotHome

__all__ = [
    "CONFIG_NAME",
    "ConfigError",
    "DaemonConfig",
    "config_path",
    "load_daemon_config",
    "load_template_budget",
]

CONFIG_NAME = "config.yaml"
_SECTIONS = ("watch", "templates", "http", "streams")


@dataclass(frozen=True)
class DaemonConfig:
    """What config.yaml says; `path` is None when there is no file."""

    path: Path | None = None
    watch: WatchConfig | None = None
    templates: RenderBudget = DEFAULT_BUDGET
    limits: ClientLimits = ClientLimits()


def config_path(home: IngotHome) -> Path:
    return home.path(CONFIG_NAME)


def load_daemon_config(home: IngotHome, path: Path | None = None) -> DaemonConfig:
    """Read and validate `path` (default `$INGOT_HOME/config.yaml`); raises ConfigError."""
    path = (path or config_path(home)).expanduser().absolute()
    if not path.exists():
        return DaemonConfig()
    document = load_yaml_file(path)
    sections = document.mapping(_SECTIONS)
    watch = sections.get("watch")
    templates = sections.get("templates")
    limits = ClientLimits()
    if "http" in sections:
        limits = parse_http_section(sections["http"], limits)
    if "streams" in sections:
        limits = parse_streams_section(sections["streams"], limits)
    return DaemonConfig(
        path=path,
        watch=parse_watch_section(watch, base_dir=path.parent) if watch is not None and not watch.is_null else None,
        templates=parse_templates_section(templates) if templates is not None else DEFAULT_BUDGET,
        limits=limits,
    )


def load_template_budget(home: IngotHome, path: Path | None = None) -> RenderBudget:
    """Only the `templates:` section (for `ingot create` / `pull`, which need nothing else)."""
    path = (path or config_path(home)).expanduser().absolute()
    if not path.exists():
        return DEFAULT_BUDGET
    templates = load_yaml_file(path).mapping(_SECTIONS).get("templates")
    return parse_templates_section(templates) if templates is not None else DEFAULT_BUDGET
