"""The engine's pure-Python parts: stop filtering, incremental UTF-8, prompt fitting, slot choice."""

from __future__ import annotations

import pytest

from ingot.daemon.engine import ContextOverflowError
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
