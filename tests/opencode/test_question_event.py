"""The `question` tool's event is recognised, so a turn can dismiss it instead of hanging."""

from oco.opencode import QuestionAsked, parse_event


def test_question_asked_is_parsed_and_routed_by_session():
    event = parse_event(
        {
            "type": "question.asked",
            "properties": {
                "id": "que_1",
                "sessionID": "ses_1",
                "questions": [{"question": "Which file?", "header": "File", "options": []}],
            },
        }
    )
    assert event == QuestionAsked(
        "ses_1", "que_1", [{"question": "Which file?", "header": "File", "options": []}]
    )


def test_a_malformed_question_event_is_ignored():
    assert parse_event({"type": "question.asked", "properties": {"id": "que_1"}}) is None
