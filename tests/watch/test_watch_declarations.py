"""Which model each Modelfile in a tree declares (docs/gitops.md), and precise errors for bad ingot.yaml files."""

from __future__ import annotations

from pathlib import Path

from ingot.daemon.watch import PushTarget, WatchConfig, discover
from ingot.daemon.watch.settings import parse_push_target


def _touch(path: Path, text: str = "FROM ./model.gguf\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _names(config: WatchConfig) -> dict[str, tuple[str, ...]]:
    return {d.key: tuple(r.short for r in d.references) for d in discover(config).declarations}


def test_names_come_from_folders_and_file_names(tree: Path) -> None:
    _touch(tree / "Chat-Bot" / "Modelfile")
    _touch(tree / "team" / "summarize.Modelfile")
    _touch(tree / "team" / "translate.Modelfile")
    _touch(tree / "team" / "notes.txt", "not a Modelfile")
    _touch(tree / ".git" / "Modelfile")  # hidden folders are never read
    _touch(tree / "deep" / ".cache" / "x" / "Modelfile")
    assert _names(WatchConfig(root=tree)) == {
        "Chat-Bot/Modelfile": ("chat-bot",),
        "team/summarize.Modelfile": ("summarize",),
        "team/translate.Modelfile": ("translate",),
    }


def test_a_modelfile_at_the_top_is_named_after_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "assistant"
    _touch(root / "Modelfile")
    assert _names(WatchConfig(root=root)) == {"Modelfile": ("assistant",)}


def test_ingot_yaml_sets_name_tags_push_and_labels(tree: Path) -> None:
    _touch(tree / "chat" / "Modelfile")
    _touch(
        tree / "chat" / "ingot.yaml",
        "name: team/support\ntags: [latest, 1.10, stable]\npush: [localhost:5000/ml]\n"
        "labels:\n  org.opencontainers.image.description: Support bot\n",
    )
    _touch(tree / "other" / "small.Modelfile")
    _touch(tree / "other" / "small.ingot.yaml", "tags: v2\npush: []\n")
    defaults = (parse_push_target("localhost:5000/default"),)
    found = {d.key: d for d in discover(WatchConfig(root=tree, push=defaults)).declarations}

    chat = found["chat/Modelfile"]
    assert [r.short for r in chat.references] == ["team/support", "team/support:1.10", "team/support:stable"]
    assert chat.push == (PushTarget("localhost:5000", "ml"),)
    assert chat.labels == {"org.opencontainers.image.description": "Support bot"}
    assert chat.settings == tree / "chat" / "ingot.yaml" and chat.settings_digest is not None

    small = found["other/small.Modelfile"]
    assert [r.short for r in small.references] == ["small:v2"]
    assert small.push == ()  # an empty list pushes nowhere, whatever the watch-level targets are


def test_bad_ingot_yaml_is_reported_at_its_place(tree: Path) -> None:
    cases = {
        "a": ("name: localhost:5000/team/a\n", "1:7", "includes a registry host"),
        "b": ("tags: [latest, -bad]\n", "1:16", "invalid tag '-bad'"),
        "c": ("name: c\ntag: v1\n", "2:1", "unknown key 'tag'"),
        "d": ("name: Not A Name\n", "1:7", "is not a valid model name"),
        "e": ("name: e\npush: [localhost:5000/x, localhost:5000/x]\n", "2:26", "listed twice"),
        "f": ("name: f:v1\n", "1:7", "includes a tag"),
    }
    for folder, (text, _where, _message) in cases.items():
        _touch(tree / folder / "Modelfile")
        _touch(tree / folder / "ingot.yaml", text)
    discovery = discover(WatchConfig(root=tree))
    assert discovery.declarations == ()
    problems = {b.key.split("/")[0]: b.problem for b in discovery.broken}
    for folder, (_text, where, message) in cases.items():
        problem = problems[folder]
        line, column = (int(n) for n in where.split(":"))
        assert (problem.file, problem.line, problem.column) == (str(tree / folder / "ingot.yaml"), line, column), folder
        assert message in problem.message, (folder, problem.message)
        assert problem.kind == "settings"


def test_a_folder_name_that_is_no_model_name_asks_for_ingot_yaml(tree: Path) -> None:
    _touch(tree / "my model" / "Modelfile")
    (broken,) = discover(WatchConfig(root=tree)).broken
    assert (broken.problem.file, broken.problem.line, broken.problem.column) == (
        str(tree / "my model" / "Modelfile"), 1, 1)
    assert broken.problem.hint is not None and "ingot.yaml" in broken.problem.hint


def test_two_files_declaring_one_name_are_both_refused(tree: Path) -> None:
    _touch(tree / "chat" / "Modelfile")
    _touch(tree / "old" / "Modelfile")
    _touch(tree / "old" / "ingot.yaml", "# moved here by mistake\nname: chat\n")
    _touch(tree / "fine" / "Modelfile")
    discovery = discover(WatchConfig(root=tree))
    assert [d.key for d in discovery.declarations] == ["fine/Modelfile"]
    problems = {b.key: b.problem for b in discovery.broken}
    assert set(problems) == {"chat/Modelfile", "old/Modelfile"}
    assert all(p.kind == "conflict" for p in problems.values())
    assert "also declared by old/Modelfile" in problems["chat/Modelfile"].message
    assert (problems["old/Modelfile"].line, problems["old/Modelfile"].column) == (2, 7)
