"""`ingot --help` stays cheap: building the parser loads none of the heavy libraries the commands use.

Every command module is imported to register its subparser, so one heavy
import at the top of any `cli/cmd_*.py` (or of a helper it imports) costs
every `ingot` invocation seconds of start-up. The check runs in a fresh
interpreter, since this test process has long loaded those libraries.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import pytest

from ingot.cli.output import user_errors

HEAVY_MODULES = (
    "numpy",
    "gguf",
    "oras",
    "requests",
    "grpc",
    "llama_cpp",
    "jinja2",
    "lark",
    "rich",
    "watchdog",
    "yaml",
    "docker",
    "google.protobuf",
    "fastapi",
    "uvicorn",
    "openai",
)

# Imports the command modules one by one (to tell which one loads what), then
# builds the real parser; prints {heavy module: who loaded it first}.
_PROBE = textwrap.dedent("""\
    import importlib, json, sys
    heavy = json.loads(sys.argv[1])

    def loaded():
        return {name for name in heavy if name in sys.modules}

    import ingot.cli.main as main
    culprits = {name: "ingot.cli.main" for name in loaded()}
    for command in main.COMMAND_MODULES:
        before = loaded()
        importlib.import_module(f"ingot.cli.{command}")
        culprits.update({name: f"ingot.cli.{command}" for name in loaded() - before})
    before = loaded()
    main.build_parser()
    culprits.update({name: "a register() call in build_parser()" for name in loaded() - before})
    print(json.dumps(culprits, sort_keys=True))
""")


def test_building_the_parser_loads_no_heavy_library() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY_MODULES)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert probe.returncode == 0, probe.stderr
    culprits: dict[str, str] = json.loads(probe.stdout)
    by_module: dict[str, list[str]] = {}
    for library, module in culprits.items():
        by_module.setdefault(module, []).append(library)
    report = "; ".join(f"{module} loads {', '.join(sorted(libs))}" for module, libs in sorted(by_module.items()))
    assert not culprits, (
        f"building the parser imported {', '.join(sorted(culprits))}: {report}. "
        "Import heavy modules inside the command's handler, not at module level."
    )


def test_watch_defaults_match_the_watcher() -> None:
    # cmd_watch writes these out so that its parser need not import the watcher.
    from ingot.cli import cmd_watch
    from ingot.daemon.watch import settings

    assert cmd_watch.DEFAULT_DEBOUNCE == settings.DEFAULT_DEBOUNCE
    assert cmd_watch.DEFAULT_RESYNC == settings.DEFAULT_RESYNC


def test_parallel_default_is_the_registry_clients() -> None:
    from ingot.cli.main import build_parser
    from ingot.registry.oci import ClientOptions

    args = build_parser().parse_args(["push", "some/model:1"])
    assert args.parallel == ClientOptions().parallel


class _NotAUserError(Exception):
    pass


def _raising(exc: BaseException) -> int:
    raise exc


def test_user_errors_resolves_an_error_named_by_string(capsys: pytest.CaptureFixture[str]) -> None:
    handler = user_errors("argparse:ArgumentTypeError")(_raising)

    assert handler(argparse.ArgumentTypeError("bad value\nhint: try another")) == 1
    assert capsys.readouterr().err == "error: bad value; try another\n"
    with pytest.raises(_NotAUserError):
        handler(_NotAUserError("a bug"))


def test_user_errors_refuses_a_malformed_name() -> None:
    with pytest.raises(ValueError, match="package.module:ClassName"):
        user_errors("argparse.ArgumentTypeError")


def test_user_errors_refuses_a_name_that_is_not_an_exception() -> None:
    handler = user_errors("argparse:ArgumentParser")(_raising)
    with pytest.raises(TypeError, match="argparse:ArgumentParser is not an exception class"):
        handler(_NotAUserError("anything"))
