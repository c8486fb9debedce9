"""The fast decoder of interaction bodies gives exactly what the standard one gives."""

from __future__ import annotations

from urllib.parse import quote_plus, unquote_plus

from hypothesis import example, given
from hypothesis import strategies as st

from handlers.slack_body import decode_form_value, parse_slack_body

FORM = "application/x-www-form-urlencoded"


@given(st.text())
def test_any_text_encoded_as_slack_does_comes_back_unchanged(text: str) -> None:
    assert decode_form_value(quote_plus(text)) == text


@given(st.text(alphabet=st.sampled_from("%=+&aZ09fF \n\r\t\\é€\x00")))
@example("a%\nb")  # a soft line break to quoted-printable
@example("a%\r\nb")
@example("100%")
@example("%4")
@example("%zz%41")
@example("%3d%3D=")
def test_malformed_or_odd_values_decode_as_the_standard_decoder_does(encoded: str) -> None:
    assert decode_form_value(encoded) == unquote_plus(encoded)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)))
def test_plain_ascii_values_decode_as_the_standard_decoder_does(encoded: str) -> None:
    assert decode_form_value(encoded) == unquote_plus(encoded)


def test_an_interaction_body_parses_to_its_payload() -> None:
    payload = (
        '{"type": "block_actions", "user": {"id": "U1"}, "x": "a=b&c+d 100%",'
        ' "actions": [{"action_id": "claim_case", "value": "7"}]}'
    )
    parsed = parse_slack_body("payload=" + quote_plus(payload), FORM)
    assert parsed is not None
    kind, document = parsed
    assert kind == "block_actions"
    assert document["x"] == "a=b&c+d 100%"
