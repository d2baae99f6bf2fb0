import pytest

from connectors.his.notation import hl7_path


@pytest.mark.parametrize(
    "notation, path",
    [
        ("PID-5.1", "segments.PID[0].f5[0].c1"),
        ("PID-5", "segments.PID[0].f5[0].c1"),
        ("OBX[2]-5", "segments.OBX[1].f5[0].c1"),
        ("OBX[10]-3.2", "segments.OBX[9].f3[0].c2"),
        ("MSH-9.2", "segments.MSH[0].f9[0].c2"),
        ("PID-3[2].5", "segments.PID[0].f3[1].c5"),
        ("ZPD-1", "segments.ZPD[0].f1[0].c1"),
        ("PID-3.4.2", "segments.PID[0].f3[0].c4s[1]"),
        ("PID-3[2].4.3", "segments.PID[0].f3[1].c4s[2]"),
    ],
)
def test_notation_becomes_an_engine_path(notation, path):
    assert hl7_path(notation) == path


@pytest.mark.parametrize("bad", ["PID", "PID.5", "pid-5", "PID-0", "OBX[0]-5", "PID-5.0", "PID-3.4.0", "PID-3.4.2.1", "PID-5.1 x"])
def test_bad_notation_is_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match=bad.split(" ")[0][:3] if bad != "pid-5" else "pid-5"):
        hl7_path(bad)
