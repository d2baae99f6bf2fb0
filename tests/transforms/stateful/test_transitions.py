"""Transition rules end to end through plan.apply: the offline timer, recovery, cooldown, heartbeat."""

from __future__ import annotations

from datetime import timedelta


from transforms.stateful import State, compile_stateful
from transforms.stateful.incidents import incident_key


def _acts(incidents):
    return [(r["device_id"], r["action"]) for r in incidents.select(["device_id", "action"]).to_pylist()]


def test_offline_opens_only_once_it_has_lasted_120s(offline_plan, mk):
    inc, q, st = offline_plan.apply(mk.status([("d1", 0, "online"), ("d1", 10, "offline"), ("d2", 100, "online")]),
                                    State.empty())
    assert inc.num_rows == 0  # offline for only 90 s so far (watermark from d2)
    inc, q, st = offline_plan.apply(mk.status([("d2", 130, "online")]), st)
    assert _acts(inc) == [("d1", "open")]
    row = inc.to_pylist()[0]
    assert row["since"] == mk.T0 + timedelta(seconds=10) and row["at"] == mk.T0 + timedelta(seconds=130)
    assert (row["from_status"], row["to_status"], row["duration_s"]) == ("online", "offline", 120.0)
    assert row["incident_key"] == incident_key("device_offline_ticket", "d1", "offline",
                                               int((mk.T0 + timedelta(seconds=10)).timestamp() * 1_000_000))
    assert row["evidence"] == ["d1-10-1"]


def test_recover_before_120s_makes_no_ticket(offline_plan, mk):
    ev = mk.status([("d1", 0, "online"), ("d1", 10, "offline"), ("d1", 100, "online"), ("d2", 1000, "online")])
    inc, q, st = offline_plan.apply(ev, State.empty())
    assert inc.num_rows == 0 and q.num_rows == 0


def test_back_online_closes_the_same_incident(offline_plan, mk):
    ev = mk.status([("d1", 0, "online"), ("d1", 10, "offline"), ("d1", 500, "online")])
    inc, _, st = offline_plan.apply(ev, State.empty())
    assert _acts(inc) == [("d1", "open"), ("d1", "close")]
    assert len(set(inc.column("incident_key").to_pylist())) == 1
    assert inc.column("duration_s").to_pylist() == [120.0, 490.0]
    assert st.scopes.to_pylist()[0]["open_key"] is None


def test_flaps_within_cooldown_annotate_the_same_ticket(offline_plan, mk):
    ev = mk.status([("d1", 0, "online"), ("d1", 10, "offline"), ("d1", 200, "online"),
                        ("d1", 600, "offline"), ("d1", 900, "online"),      # 400 s after the close: within 30 m
                        ("d1", 5000, "offline"), ("d1", 5200, "online")])   # > 30 m after: a new incident
    inc, _, _ = offline_plan.apply(ev, State.empty())
    assert inc.column("action").to_pylist() == ["open", "close", "annotate", "close", "open", "close"]
    keys = inc.column("incident_key").to_pylist()
    assert keys[0] == keys[1] == keys[2] == keys[3] != keys[4] == keys[5]


def test_heartbeat_now_fires_the_timer_without_new_events(offline_plan, mk):
    inc, _, st = offline_plan.apply(mk.status([("d1", 0, "online"), ("d1", 10, "offline")]), State.empty())
    assert inc.num_rows == 0
    inc, _, st = offline_plan.apply(mk.status([]), st, now=mk.T0 + timedelta(seconds=129))
    assert inc.num_rows == 0
    inc, _, st = offline_plan.apply(mk.status([]), st, now=mk.T0 + timedelta(seconds=130))
    assert _acts(inc) == [("d1", "open")]
    # an event older than the heartbeat is now late and quarantined, not applied
    inc, q, st = offline_plan.apply(mk.status([("d1", 60, "online")]), st)
    assert inc.num_rows == 0 and q.column("reason")[0].as_py().startswith("late event")


def test_out_of_order_within_a_batch_is_sorted_by_event_time(offline_plan, mk):
    ev = mk.status([("d1", 500, "online"), ("d1", 10, "offline"), ("d1", 0, "online")])
    inc, q, _ = offline_plan.apply(ev, State.empty())
    # arrival order 500, 10, 0: with lateness 0 the two older events are late
    assert q.num_rows == 2 and inc.num_rows == 0
    lenient = compile_stateful({**mk.OFFLINE, "lateness": "10m"}, "device_offline_ticket")
    inc, q, st = lenient.apply(ev, State.empty())
    assert q.num_rows == 0 and inc.num_rows == 0  # nothing is final yet: the watermark is 500 s - 10 m
    inc, q, st = lenient.apply(mk.status([]), st, now=mk.T0 + timedelta(seconds=1100))
    assert _acts(inc) == [("d1", "open"), ("d1", "close")]


def test_first_event_of_a_device_is_not_a_transition(offline_plan, mk):
    inc, _, _ = offline_plan.apply(mk.status([("d1", 0, "offline"), ("d2", 1000, "online")]), State.empty())
    assert inc.num_rows == 0


def test_state_keeps_only_what_later_batches_need(offline_plan, mk):
    rows = [("d1", float(i), "online") for i in range(100)] + [("d1", 100.0, "offline")]
    _, _, st = offline_plan.apply(mk.status(rows), State.empty())
    # final (before the watermark 100 s): one run of online, kept by its first event (seq 0);
    # offline@100 is not final yet and is kept whole. The 98 events in between are gone.
    assert st.buffer.column("seq").to_pylist() == [0, 100]
