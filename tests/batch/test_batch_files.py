"""Reading batch inputs and result files, without a daemon: bad lines, duplicates, torn writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingot.daemon.batch.errors import DuplicateCustomIdError, ResultFileError
from ingot.daemon.batch.execute import check_body
from ingot.daemon.batch.lines import CHAT, EMBEDDINGS, parse_input
from ingot.daemon.batch.results import ResultFile


def _lines(*items: object) -> list[bytes]:
    return [(item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items]


def _request(custom_id: str, url: str = CHAT, **body: object) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}}


def test_each_bad_line_is_reported_with_its_line_number_and_the_rest_is_kept() -> None:
    parsed = parse_input(
        _lines(
            _request("a"),
            b"{not json",
            {"custom_id": "b", "method": "POST", "url": "/v1/images", "body": {}},
            {"custom_id": "c", "method": "POST", "url": CHAT},
            _request("d", n=3),
            _request("e", temperature="hot"),
            {"method": "POST", "url": CHAT, "body": {}},
            _request("f", stream=True),
            b"   ",
            _request("g"),
        ),
        filename="in.jsonl",
        check=check_body,
    )
    assert [(r.line, r.custom_id) for r in parsed.requests] == [(1, "a"), (10, "g")]
    bad = {b.line: b for b in parsed.bad}
    assert sorted(bad) == [2, 3, 4, 5, 6, 7, 8]
    assert (bad[2].code, bad[2].custom_id) == ("invalid_json", None)
    assert bad[2].message.startswith("in.jsonl:2: not JSON")
    assert (bad[3].code, bad[3].param, bad[3].custom_id) == ("invalid_url", "url", "b")
    assert bad[4].code == "missing_body"
    assert (bad[5].code, bad[5].param) == ("invalid_body", "body.n")
    assert bad[6].param == "body.temperature"
    assert "temperature" in bad[6].message
    assert bad[7].code == "missing_custom_id"
    assert "stream" in bad[8].message


def test_plain_prompts_with_a_default_model() -> None:
    parsed = parse_input(
        _lines("hello", {"prompt": "hi", "max_tokens": 3, "custom_id": "x"}, {"messages": [{"role": "user", "content": "yo"}]},
               _request("full")),
        filename="p.jsonl", check=check_body, model="counter",
    )
    assert [r.custom_id for r in parsed.requests] == ["line-1", "x", "line-3", "full"]
    assert parsed.requests[0].body == {"model": "counter", "messages": [{"role": "user", "content": "hello"}]}
    assert parsed.requests[1].body["max_tokens"] == 3
    assert parsed.requests[3].body["model"] == "m"  # a body's own model wins
    embeds = parse_input(_lines("text one", {"input": ["a", "b"]}), filename="e", check=check_body,
                         model="counter", endpoint=EMBEDDINGS)
    assert [r.body["input"] for r in embeds.requests] == ["text one", ["a", "b"]]
    without = parse_input(_lines("hello"), filename="p.jsonl", check=check_body)
    assert "--model" in without.bad[0].message


def test_duplicate_custom_ids_are_an_error_naming_both_lines() -> None:
    with pytest.raises(DuplicateCustomIdError) as caught:
        parse_input(_lines(_request("a"), _request("b"), b"oops", _request("a")), filename="d.jsonl", check=check_body)
    assert "'a' on lines 1 and 4" in str(caught.value)


def test_a_torn_last_line_is_cut_off_and_appends_continue_after_it(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    good = [{"custom_id": "a", "response": None}, {"custom_id": "b", "response": None}]
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in good) + b'{"custom_id": "c", "resp')
    with ResultFile.open(path) as results:
        assert results.repaired and results.custom_ids == {"a", "b"}
        results.append({"custom_id": "c", "response": None})
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == ["a", "b", "c"]
    with ResultFile.open(path) as again:
        assert not again.repaired and len(again.records) == 3


def test_a_bad_line_before_the_last_is_an_error_not_data_dropped(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"custom_id": "a"}\ngarbage\n{"custom_id": "b"}\n')
    with pytest.raises(ResultFileError) as caught:
        ResultFile.open(path)
    assert f"{path}:2:" in str(caught.value)
    assert path.read_bytes().count(b"\n") == 3  # untouched
