"""The engine's pure-Python parts: stop filtering, incremental UTF-8, prompt fitting, slot choice."""

from __future__ import annotations

import queue

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingot.daemon.engine import Chunk, ContextOverflowError, DoneReason, RequestStream
from ingot.daemon.engine.context_window import fit_prompt
from ingot.daemon.engine.detokenizer import IncrementalDetokenizer
from ingot.daemon.engine.slots import Slot, choose_slot
from ingot.daemon.engine.stops import StopFilter


def run_filter(stops: tuple[str, ...], pieces: list[str]) -> tuple[list[str], bool]:
    flt = StopFilter(stops)
    emitted: list[str] = []
    for piece in pieces:
        out, stopped = flt.feed(piece)
        emitted.append(out)
        if stopped:
            return emitted, True
    emitted.append(flt.flush())
    return emitted, False


def test_stop_split_over_pieces_is_held_then_cut() -> None:
    emitted, stopped = run_filter(("</end>",), ["hello <", "/e", "nd> tail"])
    assert stopped
    assert emitted == ["hello ", "", ""]


def test_held_text_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    emitted, stopped = run_filter(("</end>",), ["a <", "/x", "y"])
    assert not stopped
    assert emitted == ["a ", "</x", "y", ""]


def test_earliest_of_several_stops_wins_and_unfinished_tail_flushes() -> None:
    assert run_filter(("cd", "b"), ["abcd"]) == (["a"], True)
    assert run_filter(("xyz",), ["abc", "x", "y"]) == (["abc", "", "", "xy"], False)


def _reference_filter(stops: tuple[str, ...], pieces: list[str]) -> tuple[str, bool]:
    # What a stop filter must emit in total: the text up to the earliest stop, or all of it.
    text = "".join(pieces)
    cuts = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


@settings(max_examples=300, deadline=None)
@given(
    stops=st.lists(st.text(alphabet="ab<|>\n", min_size=1, max_size=5), min_size=1, max_size=3),
    pieces=st.lists(st.text(alphabet="ab<|>\nz", max_size=4), max_size=10),
)
def test_stop_filter_emits_exactly_the_text_before_the_earliest_stop(stops: list[str], pieces: list[str]) -> None:
    emitted, stopped = run_filter(tuple(stops), pieces)
    text, should_stop = _reference_filter(tuple(stops), pieces)
    assert ("".join(emitted), stopped) == (text, should_stop)
    # Nothing that could still become a stop is ever emitted early: every prefix emitted so far
    # is a prefix of the final text.
    flt, so_far = StopFilter(tuple(stops)), ""
    for piece in pieces:
        out, hit = flt.feed(piece)
        so_far += out
        assert text.startswith(so_far)
        if hit:
            break


def test_joined_streams_merge_waiting_text_but_never_the_final_chunk() -> None:
    stream = RequestStream(cancel=lambda: None)
    for text in ("a", "b", "c"):
        stream.push(Chunk(text))
    final = Chunk("", done=True, done_reason=DoneReason.STOP)
    stream.push(final)
    assert list(stream.joined()) == [Chunk("abc"), final]
    assert stream.finished

    failing = RequestStream(cancel=lambda: None)
    failing.push(Chunk("x"))
    failing.push(Chunk("y"))
    failing.push(RuntimeError("runner died"))
    joined = failing.joined()
    assert next(joined) == Chunk("xy")
    with pytest.raises(RuntimeError, match="runner died"):
        next(joined)


def test_a_joined_stream_waits_for_the_next_chunk_when_none_is_queued() -> None:
    stream = RequestStream(cancel=lambda: None)
    stream.push(Chunk("a"))
    joined = stream.joined()
    assert next(joined) == Chunk("a")
    with pytest.raises(queue.Empty):
        stream.get(timeout=0.01)
    stream.push(Chunk("", done=True, done_reason=DoneReason.LENGTH))
    assert next(joined).done


def test_no_stops_passes_text_through() -> None:
    assert run_filter((), ["a", "b"]) == (["a", "b", ""], False)


def test_multibyte_characters_split_across_tokens_are_never_split_in_the_output() -> None:
    pieces = {1: "caf".encode(), 2: "é🙂".encode()[:1], 3: "é🙂".encode()[1:4], 4: "é🙂".encode()[4:]}
    detok = IncrementalDetokenizer(pieces.__getitem__)
    assert [detok.feed(t) for t in (1, 2, 3, 4)] == ["caf", "", "é", "🙂"]
    assert detok.flush() == ""


def test_an_incomplete_character_at_the_end_is_withheld_not_replaced() -> None:
    detok = IncrementalDetokenizer({1: b"ok\xe2\x82"}.__getitem__)
    assert detok.feed(1) == "ok"
    assert detok.pending
    assert detok.flush() == ""
    assert not detok.pending


def test_bytes_that_can_never_be_a_character_still_become_a_replacement() -> None:
    detok = IncrementalDetokenizer({1: b"a\x8cb"}.__getitem__)
    assert detok.feed(1) == "a\ufffdb"
    assert not detok.pending


def test_fit_prompt_keeps_fitting_prompts_whole() -> None:
    assert fit_prompt([1, 2, 3], n_ctx=3, truncatable_after=0, num_predict=-1) == ([1, 2, 3], 0)


def test_fit_prompt_refuses_or_truncates_after_the_protected_prefix() -> None:
    tokens = list(range(100))
    with pytest.raises(ContextOverflowError) as info:
        fit_prompt(tokens, n_ctx=64, truncatable_after=0, num_predict=-1)
    assert info.value.over_by == 36
    kept, dropped = fit_prompt(tokens, n_ctx=64, truncatable_after=5, num_predict=10)
    assert len(kept) == 54 and dropped == 46
    assert kept[:5] == [0, 1, 2, 3, 4] and kept[5:] == list(range(51, 100))
    with pytest.raises(ContextOverflowError):
        fit_prompt(tokens, n_ctx=64, truncatable_after=60, num_predict=10)


def test_slot_choice_prefers_shared_prefix_then_empty_then_least_recently_used() -> None:
    chat = Slot(0, cached=[1, 10, 11, 12, 13, 14], last_used=5)
    other = Slot(1, cached=[1, 20, 21], last_used=1)
    empty = Slot(2)
    busy = Slot(3, cached=[1, 10, 11, 12, 13, 14, 15], request=object())
    slots = [chat, other, empty, busy]
    assert choose_slot(slots, [1, 10, 11, 12, 13, 14, 15, 16]) == (chat, 6)
    # Sharing only BOS is no reason to overwrite a conversation: the empty slot wins.
    assert choose_slot(slots, [1, 30, 31]) == (empty, 0)
    empty.request = object()
    assert choose_slot(slots, [1, 30, 31]) == (other, 1)
    # A prompt equal to the cache still leaves its last token to evaluate.
    empty.request = None
    assert choose_slot(slots, [1, 10, 11, 12, 13, 14]) == (chat, 5)
    for slot in slots:
        slot.request = object()
    assert choose_slot(slots, [1]) is None
