"""The watcher on a real folder with real file events: builds, idempotence, errors, recovery, orphans.

Every wait is on an event the watcher publishes (`wait_for`), never a sleep.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from watch_helpers import WatcherFactory, add_model, builds_per_model, reports_after, settle, settled_pass, wait_built

from ingot.daemon.watch import ConfigError, ReconcileReport, read_status
from ingot.registry import mediatypes as mt
from ingot.registry.home import IngotHome
from ingot.registry.package import load_package
from ingot.registry.reference import Reference
from ingot.registry.store import Store


def _digest(store: Store, name: str) -> str | None:
    descriptor = store.resolve(Reference.parse(name))
    return descriptor.digest if descriptor is not None else None


def test_first_pass_builds_every_declared_model(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    add_model(tree, "alpha", counting_gguf, "PARAMETER num_predict 4\n")
    add_model(tree, "beta", counting_gguf, "SYSTEM be brief\n", modelfile="beta.Modelfile")
    watcher = watch(tree)
    report = watcher.wait_for(ReconcileReport)
    assert report.trigger == "startup"
    assert sorted(report.built) == ["alpha/Modelfile", "beta/beta.Modelfile"]
    package = load_package(store, Reference.parse("alpha"))
    assert package.digest == report.outcome("alpha/Modelfile").digest  # type: ignore[union-attr]
    assert package.modelfile.parameters["num_predict"] == 4
    assert load_package(store, Reference.parse("beta")).modelfile.system == "be brief"


def test_restart_on_an_unchanged_tree_does_no_work(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    for name in ("one", "two", "three"):
        add_model(tree, name, counting_gguf, f"SYSTEM {name}\n")
    first = watch(tree)
    built = first.wait_for(ReconcileReport)
    assert len(built.built) == 3
    first.stop()
    digests = {n: _digest(store, n) for n in ("one", "two", "three")}

    again = watch(tree)
    report = again.wait_for(ReconcileReport)
    assert report.built == () and report.failed == ()
    assert {m.action for m in report.models} == {"unchanged"}
    # The weights' digests came from the cache: not one byte of them was read again.
    assert report.files_hashed == 0
    assert {n: _digest(store, n) for n in digests} == digests


def test_an_edit_rebuilds_only_the_model_it_touches(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    chat = add_model(tree, "chat", counting_gguf, "PARAMETER num_predict 4\n")
    add_model(tree, "other", counting_gguf)
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    old = _digest(store, "chat")

    chat.write_text("FROM ./model.gguf\nPARAMETER num_predict 9\n")
    report = watcher.wait_for(ReconcileReport, lambda r: bool(r.built), after=first.seq)
    assert report.trigger == "events" and report.built == ("chat/Modelfile",)
    assert report.outcome("other/Modelfile").action == "unchanged"  # type: ignore[union-attr]
    assert "chat/Modelfile" in report.changed_paths
    new = _digest(store, "chat")
    assert new != old and report.outcome("chat/Modelfile").previous_digest == old  # type: ignore[union-attr]
    assert load_package(store, Reference.parse("chat")).modelfile.parameters["num_predict"] == 9


def test_broken_syntax_keeps_the_last_good_build_until_fixed(
    tree: Path, counting_gguf: Path, home: IngotHome, store: Store, watch: WatcherFactory
) -> None:
    chat = add_model(tree, "chat", counting_gguf, "PARAMETER num_predict 4\n")
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    good = _digest(store, "chat")

    chat.write_text("FROM ./model.gguf\nPARAMETER num_predict 4\nPARAMETR temperature 0\n")
    broken = watcher.wait_for(ReconcileReport, lambda r: bool(r.failed), after=first.seq)
    problem = broken.outcome("chat/Modelfile").problem  # type: ignore[union-attr]
    assert problem is not None and problem.kind == "modelfile"
    assert (problem.file, problem.line, problem.column) == (str(chat), 3, 1)
    assert "PARAMETR" in problem.message and problem.hint is not None and "PARAMETER" in problem.hint
    assert _digest(store, "chat") == good  # still tagged, still what a daemon serves

    (status,) = read_status(home, tree)
    record = status.state.models["chat/Modelfile"]
    assert status.running and record.digest == good
    assert record.build is not None and record.build.result == "failed"
    assert [str(p) for p in record.problems] == [str(problem)]

    chat.write_text("FROM ./model.gguf\nPARAMETER num_predict 4\nPARAMETER temperature 0\n")
    fixed = watcher.wait_for(ReconcileReport, lambda r: not r.failed, after=broken.seq)
    assert fixed.built == ("chat/Modelfile",)
    (status,) = read_status(home, tree)
    record = status.state.models["chat/Modelfile"]
    assert record.problems == () and record.digest == _digest(store, "chat") != good
    assert record.build is not None and record.build.result == "ok"


def test_reverting_a_broken_edit_recovers_without_a_build(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    chat = add_model(tree, "chat", counting_gguf, "PARAMETER num_predict 4\n")
    good_text = chat.read_text()
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    chat.write_text(good_text + 'SYSTEM """never closed\n')
    broken = watcher.wait_for(ReconcileReport, lambda r: bool(r.failed), after=first.seq)
    chat.write_text(good_text)
    recovered = watcher.wait_for(ReconcileReport, lambda r: not r.failed, after=broken.seq)
    outcome = recovered.outcome("chat/Modelfile")
    assert outcome is not None and outcome.action == "unchanged" and outcome.problem is None
    assert watcher.state().models["chat/Modelfile"].problems == ()


def test_missing_weights_and_adapters_point_at_their_line(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    add_model(tree, "chat", counting_gguf)
    (tree / "chat" / "Modelfile").write_text("# weights are fetched by CI\nFROM   ./missing.gguf\n")
    add_model(tree, "tuned", counting_gguf, "PARAMETER top_k 5\nADAPTER ./lora/adapter.gguf\n")
    report = watch(tree).wait_for(ReconcileReport)
    chat = report.outcome("chat/Modelfile").problem  # type: ignore[union-attr]
    assert chat is not None and (chat.line, chat.column) == (2, 8) and "does not exist" in chat.message
    tuned = report.outcome("tuned/Modelfile").problem  # type: ignore[union-attr]
    assert tuned is not None and (tuned.line, tuned.column) == (3, 9) and "ADAPTER" in tuned.message
    assert _digest(store, "chat") is None and _digest(store, "tuned") is None


def test_a_burst_of_twenty_changes_gives_one_build_per_model(
    tree: Path, counting_gguf: Path, watch: WatcherFactory
) -> None:
    names = [f"m{i}" for i in range(5)]
    modelfiles = {name: add_model(tree, name, counting_gguf, "PARAMETER num_predict 4\n") for name in names}
    watcher = watch(tree)
    start = watcher.wait_for(ReconcileReport)
    assert len(start.built) == 5

    # What a `git pull` does: 20 files rewritten, 4 per model folder, one after the other over
    # a few tens of milliseconds (the pause paces the writes like a real checkout; it synchronizes
    # nothing). Without debouncing, a pass would start between a model's Modelfile and its
    # ingot.yaml and build it twice.
    writes = []
    for name, modelfile in modelfiles.items():
        writes.append((modelfile, "FROM ./model.gguf\nPARAMETER num_predict 6\n"))
        writes.append((tree / name / "README.md", f"# {name}\n"))
    for name in names:
        writes.append((tree / name / "ingot.yaml", f"name: {name}\nlabels: {{owner: team-{name}}}\n"))
        writes.append((tree / name / "CHANGELOG.md", "- longer answers\n"))
    for path, text in writes:
        path.write_text(text)
        time.sleep(0.005)
    wait_built(watcher, [f"{name}/Modelfile" for name in names], after=start.seq)
    settled = settled_pass(watcher)
    assert settled.built == ()  # the burst was fully handled before this pass

    reports = reports_after(watcher, start.seq)
    assert builds_per_model(reports) == {f"{name}/Modelfile": 1 for name in names}
    burst_reports = [r for r in reports if r.trigger == "events"]
    assert len(burst_reports) >= 1
    assert len({p for r in burst_reports for p in r.changed_paths}) >= 20


def test_weights_changing_rebuilds_and_unchanged_weights_are_not_rehashed(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    from daemon_helpers import OTHER

    from ingot.registry.synthetic import write_synthetic_gguf

    add_model(tree, "chat", counting_gguf)
    add_model(tree, "other", counting_gguf, "SYSTEM x\n")
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    old = _digest(store, "chat")
    replacement = write_synthetic_gguf(tree / "chat" / ".incoming.gguf", OTHER)
    settle(replacement)
    os.replace(replacement, tree / "chat" / "model.gguf")  # how git and rsync put a new version in place
    report = watcher.wait_for(ReconcileReport, lambda r: bool(r.built), after=first.seq)
    assert report.built == ("chat/Modelfile",)
    assert report.files_hashed == 1  # the new weights; the other model's file came from the cache
    assert _digest(store, "chat") != old


def test_deleted_modelfile_is_orphaned_and_kept_unless_prune(
    tree: Path, counting_gguf: Path, store: Store, home: IngotHome, watch: WatcherFactory
) -> None:
    gone = add_model(tree, "gone", counting_gguf)
    add_model(tree, "stays", counting_gguf)
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    gone.unlink()
    report = watcher.wait_for(ReconcileReport, lambda r: bool(r.orphaned), after=first.seq)
    assert report.orphaned == ("library/gone:latest",) and report.pruned == ()
    assert _digest(store, "gone") is not None  # kept: prune is off
    (status,) = read_status(home, tree)
    assert set(status.state.orphans) == {"library/gone:latest"}
    assert "gone/Modelfile" not in status.state.models
    watcher.stop()

    pruning = watch(tree, prune=True)
    pruned = pruning.wait_for(ReconcileReport)
    assert pruned.pruned == ("library/gone:latest",)
    assert _digest(store, "gone") is None and _digest(store, "stays") is not None
    assert read_status(home, tree)[0].state.orphans == {}


def test_prune_never_untags_what_someone_else_retagged(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    gone = add_model(tree, "gone", counting_gguf)
    add_model(tree, "stays", counting_gguf, "SYSTEM other\n")
    watcher = watch(tree, prune=True)
    first = watcher.wait_for(ReconcileReport)
    store.tag(Reference.parse("gone"), store.resolve(Reference.parse("stays")))  # type: ignore[arg-type]
    gone.unlink()
    report = watcher.wait_for(ReconcileReport, lambda r: bool(r.orphaned), after=first.seq)
    assert report.pruned == ()
    assert _digest(store, "gone") == _digest(store, "stays")


def test_a_model_built_from_another_follows_it(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    # "assistant" is built FROM "base"; sorted by name it would come first.
    add_model(tree, "assistant", counting_gguf)
    (tree / "assistant" / "Modelfile").write_text("FROM zbase\nSYSTEM you help\n")
    base = add_model(tree, "zbase", counting_gguf, "PARAMETER num_predict 4\n")
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    assert sorted(first.built) == ["assistant/Modelfile", "zbase/Modelfile"]
    assert load_package(store, Reference.parse("assistant")).modelfile.parameters["num_predict"] == 4

    base.write_text("FROM ./model.gguf\nPARAMETER num_predict 8\n")
    report = watcher.wait_for(ReconcileReport, lambda r: bool(r.built), after=first.seq)
    assert sorted(report.built) == ["assistant/Modelfile", "zbase/Modelfile"]
    assert load_package(store, Reference.parse("assistant")).modelfile.parameters["num_predict"] == 8


def test_from_itself_or_in_a_cycle_is_refused_at_the_from_line(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    loop = add_model(tree, "loop", counting_gguf)
    add_model(tree, "ping", counting_gguf)
    (tree / "ping" / "Modelfile").write_text("FROM pong\n")
    add_model(tree, "pong", counting_gguf)
    (tree / "pong" / "Modelfile").write_text("# pong\nFROM ping\n")
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    assert first.built == ("loop/Modelfile",)
    for key, where in (("ping/Modelfile", (1, 6)), ("pong/Modelfile", (2, 6))):
        problem = first.outcome(key).problem  # type: ignore[union-attr]
        assert problem is not None and (problem.line, problem.column) == where and "cycle" in problem.message

    loop.write_text("FROM loop\n")
    report = watcher.wait_for(ReconcileReport, lambda r: "loop/Modelfile" in r.failed, after=first.seq)
    problem = report.outcome("loop/Modelfile").problem  # type: ignore[union-attr]
    assert problem is not None and (problem.line, problem.column) == (1, 6)
    assert "the model this file declares" in problem.message


def test_removed_tag_is_put_back_without_a_build(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    add_model(tree, "chat", counting_gguf)
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    digest = _digest(store, "chat")
    store.untag(Reference.parse("chat"))  # `ingot rm chat` by hand
    report = settled_pass(watcher)
    assert report.outcome("chat/Modelfile").action == "retagged"  # type: ignore[union-attr]
    assert report.seq > first.seq and _digest(store, "chat") == digest


def test_git_checkout_annotations(tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory) -> None:
    add_model(tree, "chat", counting_gguf)
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://bot:s3cret@git.example.com/ml/models.git"], check=True)
    subprocess.run([*git, "add", "chat/Modelfile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "chat"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()

    watch(tree).wait_for(ReconcileReport)
    manifest = json.loads(store.read_blob(_digest(store, "chat")))  # type: ignore[arg-type]
    assert manifest["annotations"][mt.ANNOTATION_REVISION] == head
    assert manifest["annotations"][mt.ANNOTATION_SOURCE] == "https://git.example.com/ml/models.git"


def test_one_watcher_per_folder(tree: Path, counting_gguf: Path, watch: WatcherFactory) -> None:
    add_model(tree, "chat", counting_gguf)
    first = watch(tree)
    first.wait_for(ReconcileReport)
    with pytest.raises(ConfigError) as caught:
        watch(tree)
    assert f"pid {os.getpid()}" in caught.value.message


def test_a_broken_ingot_yaml_keeps_the_model_and_its_tags(
    tree: Path, counting_gguf: Path, store: Store, watch: WatcherFactory
) -> None:
    add_model(tree, "chat", counting_gguf)
    settings = tree / "chat" / "ingot.yaml"
    settings.write_text("name: team/chat\ntags: [latest, stable]\n")
    watcher = watch(tree)
    first = watcher.wait_for(ReconcileReport)
    good = _digest(store, "team/chat:stable")
    assert good is not None and good == _digest(store, "team/chat")

    settings.write_text("name: team/chat\ntags: [latest, stable\n")
    broken = watcher.wait_for(ReconcileReport, lambda r: bool(r.failed), after=first.seq)
    problem = broken.outcome("chat/Modelfile").problem  # type: ignore[union-attr]
    assert problem is not None and problem.kind == "settings" and problem.file == str(settings)
    assert problem.line == 3 and "invalid YAML" in problem.message
    assert broken.orphaned == ()  # a typo does not orphan the model's tags
    assert _digest(store, "team/chat:stable") == good

    settings.write_text("name: team/chat\ntags: [latest, stable]\n")
    fixed = watcher.wait_for(ReconcileReport, lambda r: not r.failed, after=broken.seq)
    assert fixed.outcome("chat/Modelfile").action == "unchanged"  # type: ignore[union-attr]
