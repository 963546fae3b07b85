"""The streaming reasoning splitter, fed in every way a token stream can arrive."""

from __future__ import annotations

import pytest

from r1chat.reasoning import ANSWER, REASONING, ReasoningSplitter

R1_OUTPUT = "Let me think.\nParis is in France.\n</think>\n\nThe capital is Paris."


def split_all(chunks, in_reasoning=True):
    splitter = ReasoningSplitter(in_reasoning=in_reasoning)
    events = []
    for chunk in chunks:
        events += splitter.feed(chunk)
    events += splitter.finish()
    return splitter, events


def joined(events, kind):
    return "".join(text for k, text in events if k == kind)


def test_r1_output_without_opening_tag():
    splitter, events = split_all([R1_OUTPUT])
    assert splitter.reasoning == "Let me think.\nParis is in France."
    assert splitter.answer == "The capital is Paris."
    assert splitter.closed_reasoning
    assert not splitter.ended_in_reasoning
    assert [kind for kind, _ in events] == [REASONING, ANSWER]


@pytest.mark.parametrize("cut", range(1, len(R1_OUTPUT)))
def test_close_tag_split_at_every_position(cut):
    splitter, events = split_all([R1_OUTPUT[:cut], R1_OUTPUT[cut:]])
    assert splitter.reasoning == "Let me think.\nParis is in France."
    assert splitter.answer == "The capital is Paris."
    assert "<" not in joined(events, ANSWER)
    assert "</" not in joined(events, REASONING)


def test_close_tag_one_character_at_a_time():
    splitter, events = split_all(list(R1_OUTPUT))
    assert splitter.reasoning == "Let me think.\nParis is in France."
    assert splitter.answer == "The capital is Paris."
    assert joined(events, ANSWER).strip() == "The capital is Paris."


def test_streamed_events_match_final_text():
    splitter, events = split_all([R1_OUTPUT[i:i + 3] for i in range(0, len(R1_OUTPUT), 3)])
    assert joined(events, REASONING).strip() == splitter.reasoning
    assert joined(events, ANSWER).strip() == splitter.answer


def test_empty_thinking():
    splitter, events = split_all(["\n</think>\n\n", "Hello!"])
    assert splitter.reasoning == ""
    assert splitter.answer == "Hello!"
    assert [kind for kind, _ in events] == [ANSWER]


def test_model_repeats_opening_tag():
    splitter, _ = split_all(["<th", "ink>\nhmm</think>ok"])
    assert splitter.reasoning == "hmm"
    assert splitter.answer == "ok"


def test_no_tags_from_non_r1_model():
    text = "Paris is the capital. Tags like </think> mid-answer stay."
    splitter, events = split_all([text[:5], text[5:]], in_reasoning=False)
    assert splitter.reasoning == ""
    assert splitter.answer == text
    assert {kind for kind, _ in events} == {ANSWER}


def test_non_r1_model_that_opens_think_itself():
    splitter, _ = split_all(["  <thi", "nk>plan</thi", "nk>\nanswer"], in_reasoning=False)
    assert splitter.reasoning == "plan"
    assert splitter.answer == "answer"


def test_answer_starting_like_a_tag_is_kept():
    splitter, _ = split_all(["<", "b>bold</b>"], in_reasoning=False)
    assert splitter.answer == "<b>bold</b>"


def test_budget_runs_out_inside_reasoning():
    splitter, events = split_all(["I need to consider", " many things </th"])
    assert splitter.ended_in_reasoning
    assert splitter.answer == ""
    assert splitter.reasoning == "I need to consider many things </th"
    assert {kind for kind, _ in events} == {REASONING}


@pytest.mark.parametrize(
    "text",
    [
        "让我想想。巴黎在法国。</think>\n\n首都是巴黎。🇫🇷🎉",
        "思考🤔🤔</think>答案：北京 👍🏽",
    ],
)
def test_multibyte_text_fed_one_byte_at_a_time(text):
    data = text.encode("utf-8")
    splitter, events = split_all([data[i:i + 1] for i in range(len(data))])
    reasoning, _, answer = text.partition("</think>")
    assert splitter.reasoning == reasoning.strip()
    assert splitter.answer == answer.strip()
    for _, piece in events:
        assert "\ufffd" not in piece


@pytest.mark.parametrize("cut", range(1, 40))
def test_multibyte_split_at_every_byte(cut):
    data = "答案：🇨🇳 是</think>好的，谢谢😀".encode()
    splitter, _ = split_all([data[:cut], data[cut:]])
    assert splitter.reasoning == "答案：🇨🇳 是"
    assert splitter.answer == "好的，谢谢😀"


def test_invalid_utf8_is_replaced_not_raised():
    splitter, _ = split_all([b"ok \xff\xfe </think>fine"])
    assert splitter.answer == "fine"
    assert "\ufffd" in splitter.reasoning


def test_cut_inside_a_character_drops_the_fragment():
    data = "答案是北京".encode()
    splitter, events = split_all([data[:-1]], in_reasoning=False)
    assert splitter.answer == "答案是北"
    assert "\ufffd" not in joined(events, ANSWER)
