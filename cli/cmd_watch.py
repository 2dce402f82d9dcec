"""`ingot watch [DIR]`: build, push and hot-swap the models a folder of Modelfiles declares; `--status`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingot.cli.output import error, human_ago, print_json, user_errors
from ingot.daemon.keepalive import KeepAliveError, parse_keep_alive
from ingot.registry.home import IngotHome
from ingot.registry.reference import Reference

# The watcher (watchdog, yaml, grpc, the build and push code) is imported inside
# the functions that use it, so that building the parser for `ingot --help`
# does not load it.
if TYPE_CHECKING:
    from ingot.daemon.watch import (
        DaemonReloader,
        FolderStatus,
        ReconcileReport,
        ReloadReport,
        WatchConfig,
        WatchEvent,
    )

__all__ = ["register"]

# The defaults of ingot.daemon.watch.settings, written out because importing
# that module loads the whole watcher; tests/cli/test_startup.py keeps them equal.
DEFAULT_DEBOUNCE = 0.5
DEFAULT_RESYNC = 300.0

DESCRIPTION = """\
Watch DIR for Modelfiles and keep their models built, tagged, pushed and
served. Each `Modelfile` (or `NAME.Modelfile`) declares one model, named after
its folder (or NAME) with tag `latest`, unless an `ingot.yaml` beside it says
otherwise (name, tags, push targets, labels): see docs/gitops.md.

It starts with a full pass over the tree, then rebuilds a model when its
Modelfile, its ingot.yaml or the weight/adapter files it names change (file
events, debounced; plus a full resync every --resync). Unchanged models cost
nothing and are not pushed again. A rebuilt model is pushed to every --push
registry (failed pushes are retried with backoff) and a running daemon is told
to hot-swap it: requests in flight finish on the old build. A Modelfile that
does not parse, or names a missing file, keeps the last good build tagged and
served; the error (file:line:col) stays in `ingot watch --status` until fixed.

Without DIR, the `watch:` section of $INGOT_HOME/config.yaml is used (the
daemon runs the same watcher when it has one). --once runs one pass and
exits (non-zero when something failed): handy in CI.
"""


def _duration(text: str) -> float:
    try:
        seconds = parse_keep_alive(text).seconds
    except KeepAliveError:
        seconds = None
    if seconds is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: write e.g. 500ms, 30s, 5m")
    return seconds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="GitOps: keep the models a folder of Modelfiles declares built, pushed and served",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", metavar="DIR", nargs="?", type=Path,
                        help="the folder to watch (default: watch.dir of $INGOT_HOME/config.yaml)")
    parser.add_argument("--status", action="store_true",
                        help="show each declared model's source, digest, last build, pushes and errors, then exit")
    parser.add_argument("--json", action="store_true", help="JSON output (one event per line while watching)")
    parser.add_argument("--push", metavar="REGISTRY", action="append", default=[],
                        help="push every model to host[:port][/namespace] (repeatable)")
    parser.add_argument("--insecure", action="store_true", help="plain HTTP / no TLS verification for --push")
    parser.add_argument("--prune", action="store_true",
                        help="untag models whose Modelfile was deleted (default: report them as orphaned)")
    parser.add_argument("--no-reload", action="store_true", help="do not tell a running daemon to hot-swap")
    parser.add_argument("--copy", action="store_true", help="store copies of weight files (no reflink/hardlink)")
    parser.add_argument("--debounce", type=_duration, default=DEFAULT_DEBOUNCE, metavar="DURATION",
                        help=f"quiet time after file events before a pass ({DEFAULT_DEBOUNCE:g}s)")
    parser.add_argument("--resync", type=_duration, default=DEFAULT_RESYNC, metavar="DURATION",
                        help=f"full pass this often, for missed events ({DEFAULT_RESYNC:g}s)")
    parser.add_argument("--once", action="store_true", help="run one full pass, wait for its hot-swaps, and exit")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="read the watch: section from FILE instead of $INGOT_HOME/config.yaml")
    parser.add_argument("--verbose", action="store_true", help="log every step on stderr")
    parser.set_defaults(handler=run)


def _config_from_args(args: argparse.Namespace, home: IngotHome) -> WatchConfig:
    from ingot.daemon.config import config_path, load_daemon_config
    from ingot.daemon.watch import ConfigError, RetrySettings, WatchConfig, parse_push_target

    if args.dir is None:
        path = args.config or config_path(home)
        loaded = load_daemon_config(home, path)
        if loaded.watch is None:
            raise ConfigError(
                f"no DIR given and {path} has no watch: section",
                hint="run `ingot watch DIR`, or add `watch: {dir: ...}` to the config (docs/gitops.md)",
            )
        if args.push or args.prune or args.copy or args.no_reload:
            raise ConfigError("--push, --prune, --copy and --no-reload go with DIR; "
                              f"without DIR, set them in the watch: section of {path}")
        return loaded.watch
    if not args.dir.is_dir():
        raise ConfigError(f"{args.dir} is not a folder", hint="watch the folder that holds your Modelfiles")
    targets = tuple(parse_push_target(t, insecure=args.insecure) for t in args.push)
    return WatchConfig(
        root=args.dir,
        push=targets,
        prune=args.prune,
        reload=not args.no_reload,
        copy=args.copy,
        debounce=args.debounce,
        resync=args.resync,
        retry=RetrySettings(),
    )


# ---- watching -------------------------------------------------------------------


def _short(tagged: str) -> str:
    return Reference.parse(tagged).short


def _short_digest(digest: str | None) -> str:
    return digest.split(":", 1)[1][:12] if digest else "-"


class _EventPrinter:
    """Prints events as they come: JSON lines, or one human line per change.

    A model that stays broken is reported once, not on every pass, and again
    when it recovers.
    """

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._shown_problems: dict[str, str] = {}

    def __call__(self, event: WatchEvent) -> None:
        from ingot.daemon.watch import ReloadReport

        if self._json:
            print(json.dumps(event.to_json()), flush=True)
            return
        if isinstance(event, ReloadReport):
            self._reload(event)
        else:
            self._reconcile(event)
        sys.stdout.flush()

    def _reload(self, event: ReloadReport) -> None:
        names = ", ".join(_short(r) for r in event.references)
        if event.result == "swapped":
            print(f"hot-swapped {names} to {_short_digest(event.digest)} in the daemon")
        elif event.result == "failed" and event.problem is not None:
            print(f"hot-swap of {names} failed: {event.problem}")

    def _reconcile(self, event: ReconcileReport) -> None:
        for model in event.models:
            names = ", ".join(_short(r) for r in model.references) or model.key
            if model.action == "built":
                print(f"built {names} {_short_digest(model.digest)} from {model.key}")
            elif model.action == "retagged":
                print(f"tagged {names} {_short_digest(model.digest)} again")
            if model.problem is not None:
                text = str(model.problem)
                if self._shown_problems.get(model.key) != text:
                    kept = f" (still serving {_short_digest(model.digest)})" if model.digest else ""
                    print(f"error in {model.key}{kept}:\n  {text}")
                    self._shown_problems[model.key] = text
            elif self._shown_problems.pop(model.key, None) is not None and model.action != "built":
                print(f"{model.key} is fine again ({names} {_short_digest(model.digest)})")
        for push in event.pushes:
            if push.result == "pushed":
                print(f"pushed {_short(push.target)} {_short_digest(push.digest)}")
            elif push.problem is not None:
                print(f"{push.problem}")
        for ref in event.orphaned:
            print(f"orphaned {_short(ref)}: its Modelfile is gone (prune: true / --prune removes such tags)")
        for ref in event.pruned:
            print(f"pruned {_short(ref)}")
        if event.trigger == "startup":
            counts = {action: sum(1 for m in event.models if m.action == action)
                      for action in ("built", "unchanged", "retagged", "failed")}
            summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
            print(f"first pass: {len(event.models)} model(s){': ' + summary if summary else ''}")


def _run_once(config: WatchConfig, home: IngotHome, reloader: DaemonReloader | None, as_json: bool) -> int:
    from ingot.daemon.watch import ReconcileReport, ReloadReport, start_watcher

    watcher = start_watcher(config, home=home, reloader=reloader, on_event=_EventPrinter(as_json))
    try:
        report = watcher.wait_for(ReconcileReport, timeout=24 * 3600)
        if reloader is not None:
            for model in report.models:
                if model.action == "built":
                    watcher.wait_for(ReloadReport, lambda e, key=model.key: e.key == key, timeout=24 * 3600)
    finally:
        watcher.stop()
    failed = report.failed or any(p.result == "failed" for p in report.pushes)
    return 1 if failed else 0


def _run_forever(config: WatchConfig, home: IngotHome, reloader: DaemonReloader | None, as_json: bool) -> int:
    from ingot.daemon.watch import start_watcher

    from ingot.daemon.signals import SignalWaiter

    with SignalWaiter() as signals:
        watcher = start_watcher(config, home=home, reloader=reloader, on_event=_EventPrinter(as_json))
        if not as_json:
            print(f"watching {config.root} (Ctrl-C to stop)", flush=True)
        try:
            signals.wait()
        finally:
            watcher.stop()
    return 0


# ---- status -----------------------------------------------------------------------


def _print_status(folders: list[FolderStatus]) -> None:
    for folder in folders:
        state = folder.state
        watcher = state.watcher
        if folder.running and watcher is not None:
            where = "in the daemon" if watcher.in_daemon else "ingot watch"
            running = f"watching ({where}, pid {watcher.pid}, last pass {human_ago(watcher.updated_at)})"
        else:
            running = "not running" + (f" (last pass {human_ago(watcher.updated_at)})" if watcher else "")
        print(f"{state.root}: {running}")
        for key, model in sorted(state.models.items()):
            names = ", ".join(_short(r) for r in model.references) or "?"
            build = model.build
            if build is None:
                built = "never built"
            elif build.result == "ok":
                built = f"built {human_ago(build.at)}"
            else:
                built = f"build failed {human_ago(build.at)}"
            pushed = [p for p in model.pushes.values()]
            ok = sum(1 for p in pushed if p.result == "ok" and p.digest == model.digest)
            push_text = f", pushed {ok}/{len(pushed)}" if pushed else ""
            print(f"  {names}  {_short_digest(model.digest)}  {key}  ({built}{push_text})")
            for push in pushed:
                if push.result == "ok":
                    print(f"    pushed {_short(push.target)} {_short_digest(push.digest)} {human_ago(push.pushed_at)}")
            if model.reload is not None and model.reload.result == "swapped":
                print(f"    hot-swapped {human_ago(model.reload.at)}")
            for problem in model.problems:
                print(f"    error: {problem}")
        for ref, orphan in sorted(state.orphans.items()):
            print(f"  {_short(ref)}  {_short_digest(orphan.digest)}  orphaned: {orphan.source} is gone "
                  f"(since {human_ago(orphan.since)}; prune: true removes it)")


def _status(args: argparse.Namespace, home: IngotHome) -> int:
    from ingot.daemon.watch import read_status

    root = args.dir.expanduser().absolute() if args.dir is not None else None
    folders = read_status(home, root)
    if args.json:
        data: list[dict[str, Any]] = [f.to_json() for f in folders]
        print_json(data)
        return 0
    if not folders:
        where = f" for {root}" if root is not None else ""
        print(f"no watch state{where} in {home.root}: run `ingot watch DIR` (or add watch: to config.yaml)")
        return 0
    _print_status(folders)
    return 0


def _configure_logging(verbose: bool) -> None:
    """Events are printed on stdout; the log (stderr) adds details with --verbose, else only bugs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ingot")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)


@user_errors()
def run(args: argparse.Namespace) -> int:
    from ingot.daemon.watch import DaemonReloader

    home = IngotHome.from_env()
    _configure_logging(args.verbose)
    if args.status:
        return _status(args, home)
    config = _config_from_args(args, home)
    try:
        reloader = DaemonReloader.from_env(home) if config.reload else None
    except ValueError as exc:
        error(exc)
        return 2
    if args.once:
        return _run_once(config, home, reloader, args.json)
    return _run_forever(config, home, reloader, args.json)
