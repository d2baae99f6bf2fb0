"""wrap_many breaks every text exactly as fit_lines does, one text at a time."""

import random

import pytest

from lineage.export.pdf_text import fit_lines, wrap_many

WORDS = ["a", "jane.doe@example.org", "0123456789abcdef" * 4, "mapped", "Müller", "€100", "北京", "(x)", "",
         "https://example.org/" + "p" * 90, "rules fired 0, 3, 17"]


def _texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    sep = [" ", " ", " ", "  ", "\n", "\r", "\x0c"]
    return ["".join(rnd.choice(WORDS) + rnd.choice(sep) for _ in range(rnd.randint(0, 40))).rstrip(" ")
            for _ in range(n)]


@pytest.mark.parametrize("font", ["Helvetica", "Helvetica-Bold", "Helvetica-Oblique"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_wrap_many_equals_fit_lines(font, seed):
    texts = _texts(seed, 300)
    widths = [random.Random(seed + i).choice([12.0, 40.0, 97.5, 250.0, 400.0]) for i in range(len(texts))]
    expected = [fit_lines(t, font, 7.5, w) for t, w in zip(texts, widths)]
    assert wrap_many(texts, font, 7.5, widths) == expected
    assert any(len(lines) > 1 for lines in expected)  # the texts do need wrapping
    assert any(lines[-1].endswith("…") for lines in expected)  # and some hit the line limit


def test_wrap_many_of_nothing():
    assert wrap_many([], "Helvetica", 7.5, []) == []
