"""A stateful section is checked against its schema and for meaning; every message names the rule path."""

from __future__ import annotations

import pytest

from transforms.stateful import StatefulSpecError, check_stateful, compile_stateful


def _issues(section):
    with pytest.raises(StatefulSpecError) as err:
        compile_stateful(section, "x")
    return err.value.issues


def test_the_sample_shape_compiles(mk):
    plan = compile_stateful(mk.OFFLINE, "device_offline_ticket")
    rule = plan.section.rules[0]
    assert (rule.from_status, rule.to_status, rule.hold_us, rule.recover_emit) == ("online", "offline", 120_000_000, "close")
    assert plan.section.cooldown_us == 30 * 60 * 1_000_000
    spike = compile_stateful(mk.SPIKE, "s").section.rules[0]
    assert (spike.window_us, spike.baseline_us, spike.threshold, spike.min_count) == (3_600_000_000, 86_400_000_000, 3.0, 3)


@pytest.mark.parametrize("rule, issue", [
    ({"rate": {"window": "1h", "baseline": "24h", "threshold": "lots"}},
     "stateful.rules[1].rate.threshold: 'lots' is not a percentage"),
    ({"rate": {"window": "1h", "baseline": "30m", "threshold": "300%"}},
     "stateful.rules[1].rate.baseline: must be at least as long as the window"),
    ({"rate": {"where": "event_type = ", "window": "1h", "baseline": "2h", "threshold": 2}},
     "stateful.rules[1].rate.where: column 14: unexpected end of expression"),
    ({"rate": {"where": "upper(event_type) = 'X'", "window": "1h", "baseline": "2h", "threshold": 2}},
     "stateful.rules[1].rate.where: column 1: upper() is not available in a where filter"),
    ({"transition": {"field": "status", "from": "online", "to": "online"}},
     "stateful.rules[1].transition: from and to are both 'online'"),
    ({"transition": {"field": "status", "to": "offline"}, "recover": {"to": "offline"}},
     "stateful.rules[1].recover.to: 'offline' is the status the rule fires on"),
    ({"transition": {"field": "status", "to": "offline", "for": "2 weeks"}},
     "stateful.rules[1].transition.for: '2 weeks' is not a duration"),
    ({"transition": {"field": "status", "to": "offline"}, "rate": {"window": "1h", "baseline": "2h", "threshold": 2}},
     "stateful.rules[1]: a rule needs exactly one of `transition` or `rate`"),
    ({"name": "offline", "transition": {"field": "status", "to": "down"}},
     "stateful.rules[1].name: 'offline' is used by rules[0] too"),
    ({"transition": {"field": "status", "to": "down"}, "emit": "explode"},
     "stateful.rules[1].emit: 'open' was expected"),
])
def test_each_bad_rule_is_named_by_its_path(mk, rule, issue):
    section = {**mk.OFFLINE, "rules": [mk.OFFLINE["rules"][0], rule]}
    issues = _issues(section)
    assert any(i.startswith(issue) for i in issues), issues


def test_dedup_other_than_key_and_rule_is_refused(mk):
    assert _issues({**mk.OFFLINE, "dedup": ["device_id"]}) == [
        "stateful.dedup: only [device_id, rule] is supported (one incident scope per key and rule), not ['device_id']"]


def test_all_problems_are_reported_at_once_with_paths_for_file_lines(mk):
    section = {"key": "device_id", "time": "device_id", "cooldown": "soon",
               "rules": [{"transition": {"field": "status", "to": "offline"}}]}
    assert check_stateful(section) == [(("stateful", "cooldown"),
                                        "'soon' is not a duration like 90s, 30m, 1h30m, 2d (units ms, s, m, h, d)")]
    located = check_stateful({**section, "cooldown": "1m"})
    assert located == [(("stateful", "time"), "the time column cannot be the key column")]
    assert check_stateful(mk.OFFLINE) == []
