from connectors.his.hl7_table import read_drop
from connectors.his.profile import check_profile


def test_strict_check_is_advice_not_a_gate(hl7_dir):
    """Most real samples fail strict hl7apy validation, yet every one of them parses tolerantly."""
    path = hl7_dir / "examples_MN_005_MN_ADT_A01.hl7"
    problems = check_profile(path.read_text())
    assert problems and "strict hl7apy check" in problems[0]
    table, rejected = read_drop(path.read_bytes(), origin=path.name)
    assert table.num_rows == 1 and rejected.num_rows == 0
