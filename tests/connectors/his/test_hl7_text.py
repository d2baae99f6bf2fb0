import pytest

from connectors.his.hl7_text import decode, split_messages

TWO = ["MSH|^~\\&|A|F|||20230101||ADT^A01|1|P|2.5", "PID|1||7", "MSH|^~\\&|A|F|||20230101||ADT^A08|2|P|2.5", "PID|1||8"]


@pytest.mark.parametrize("eol", ["\r", "\n", "\r\n"])
def test_every_line_ending_splits_the_same(eol):
    chunks = split_messages(eol.join(TWO) + eol)
    assert [c.text for c in chunks] == ["\r".join(TWO[:2]), "\r".join(TWO[2:])]
    assert [c.line for c in chunks] == [1, 3]
    assert all(c.problem is None for c in chunks)


def test_batch_envelope_is_not_part_of_a_message():
    text = "\n".join(["FHS|^~\\&", "BHS|^~\\&", *TWO, "BTS|2", "FTS|1"])
    assert [c.text for c in split_messages(text)] == ["\r".join(TWO[:2]), "\r".join(TWO[2:])]


def test_latin1_falls_back_and_utf8_wins():
    assert decode("MSH|Müller".encode("utf-8")) == ("MSH|Müller", "utf-8")
    assert decode("MSH|Müller".encode("latin-1")) == ("MSH|Müller", "latin-1")


def test_segments_before_any_msh_are_a_problem_not_dropped():
    chunks = split_messages("PID|1\rOBX|1\r" + "\r".join(TWO[:2]))
    assert chunks[0].problem.startswith("segments before the first MSH (line 1")
    assert chunks[0].text == "PID|1\rOBX|1"
    assert chunks[1].problem is None
