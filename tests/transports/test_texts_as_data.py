"""transports/texts.py: a sentence as a message id and its parameters (Text)."""

from __future__ import annotations

import json

from transports.texts import Text, gettext_noop, is_text_dict


def refused(host: str = "mail.example.org", port: int = 587) -> Text:
    return Text("could not connect to %(host)s:%(port)s", {"host": host, "port": port})


def test_the_marker_gives_the_message_id_back():
    mark = gettext_noop  # called by another name: makemessages collects no test strings
    assert mark("the command failed") == "the command failed"


def test_str_is_the_english_sentence_with_its_parameters():
    assert str(refused()) == "could not connect to mail.example.org:587"
    assert str(Text("sent")) == "sent"


def test_a_nested_text_is_rendered_in_its_place():
    text = Text("%(reason)s (%(detail)s)", {"reason": refused(), "detail": "Errno 111"})
    assert str(text) == "could not connect to mail.example.org:587 (Errno 111)"


def test_a_percent_sign_without_parameters_stays_as_it_is():
    assert str(Text("100% of the time")) == "100% of the time"


def test_each_message_id_goes_through_the_translation_nested_ones_too():
    text = Text("%(reason)s (%(detail)s)", {"reason": refused(), "detail": "x"})
    german = {
        "%(reason)s (%(detail)s)": "%(reason)s [%(detail)s]",
        "could not connect to %(host)s:%(port)s": "keine Verbindung zu %(host)s:%(port)s",
    }
    assert text.rendered(german.__getitem__) == "keine Verbindung zu mail.example.org:587 [x]"


def test_a_translation_that_does_not_fit_its_parameters_gives_the_english():
    assert refused().rendered(lambda msgid: "keine Verbindung zu %(server)s") == str(refused())


def test_it_survives_json_as_the_row_stores_it():
    text = Text("%(reason)s (%(detail)s)", {"reason": refused(), "detail": "Errno 111"})
    stored = json.loads(json.dumps(text.to_dict()))
    assert is_text_dict(stored) and is_text_dict(stored["params"]["reason"])
    assert Text.from_dict(stored) == text
    assert stored["params"]["reason"] == {
        "msgid": "could not connect to %(host)s:%(port)s",
        "params": {"host": "mail.example.org", "port": 587},
    }


def test_map_changes_the_parameters_never_the_message_id():
    text = Text("%(reason)s: %(said)s", {"reason": refused(), "said": "user s3cret denied"})
    changed = text.map(lambda value: value.replace("s3cret", "********"))
    assert changed.msgid == text.msgid
    assert str(changed) == "could not connect to mail.example.org:587: user ******** denied"
    assert Text("the s3cret sentence").map(lambda v: "x").msgid == "the s3cret sentence"


def test_equal_texts_are_equal_and_hash_alike():
    assert refused() == refused() and hash(refused()) == hash(refused())
    assert refused() != refused(port=465)
    assert len({refused(), refused(), Text("sent")}) == 2
