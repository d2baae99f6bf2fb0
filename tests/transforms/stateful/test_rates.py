"""Rate rules: counts over event time against the device's own trailing baseline, cooldown."""

from __future__ import annotations

from datetime import timedelta

from transforms.stateful import State

H = 3600.0


def _opened(inc):
    return [(r["device_id"], r["action"], r["count"], r["baseline"], r["ratio"])
            for r in inc.select(["device_id", "action", "count", "baseline", "ratio"]).to_pylist()]


def _fleet():
    rows = [("A", (h + 0.5) * H, "fault") for h in range(24)]                      # 1 fault / h for a day
    rows += [("A", (h + 0.1) * H, "info") for h in range(26)] * 3                  # noise that must not count
    rows += [("A", t * H, "fault") for t in (24.6, 24.7, 24.8)]                    # 3 in an hour: 300 %
    rows += [("B", (h + f) * H, "fault") for h in range(24) for f in (0.25, 0.75)]  # 2 faults / h
    rows += [("B", t * H, "fault") for t in (24.6, 24.7, 24.8, 24.9)]              # 4 in an hour: only 200 %
    rows += [("C", t * H, "fault") for t in (10.0, 10.1, 10.2)]                    # no history at all
    rows += [("Z", 30 * H, "info")]                                                 # moves the watermark on
    return sorted(rows, key=lambda r: r[1])


def test_fault_spike_at_300_percent_of_the_trailing_baseline(spike_plan, mk):
    inc, q, _ = spike_plan.apply(mk.telemetry(_fleet()), State.empty())
    assert q.num_rows == 0
    assert _opened(inc) == [("C", "open", 3, 0.0, None), ("A", "open", 3, 1.0, 3.0)]
    a = inc.to_pylist()[1]
    assert a["window_end"] == mk.T0 + timedelta(hours=24.8) and a["window_start"] == mk.T0 + timedelta(hours=23.8)
    assert a["since"] == a["at"] == a["window_end"] and a["kind"] == "rate" and a["from_status"] is None


def test_a_second_spike_within_cooldown_annotates_a_later_one_opens(spike_plan, mk):
    rows = [("C", t * H, "fault") for t in (10.0, 10.1, 10.2, 11.9, 12.0, 12.1, 15.0, 15.1, 15.2)]
    inc, _, _ = spike_plan.apply(mk.telemetry(rows + [("Z", 20 * H, "info")]), State.empty())
    assert inc.column("action").to_pylist() == ["open", "annotate", "open"]
    k = inc.column("incident_key").to_pylist()
    assert k[0] == k[1] != k[2]
    assert [r.hour for r in inc.column("at").to_pylist()] == [18, 20, 23]  # 08:00 + 10.2 h, 12.1 h, 15.2 h


def test_rates_wait_for_the_window_to_be_final(spike_plan, mk):
    rows = [("C", t * H, "fault") for t in (10.0, 10.1, 10.2)]
    inc, _, st = spike_plan.apply(mk.telemetry(rows), State.empty())
    assert inc.num_rows == 0  # an event at 10.2 h could still come: the window is not final
    inc, _, st = spike_plan.apply(mk.telemetry([("C", 10.2 * H, "fault")]), st)
    assert inc.num_rows == 0
    inc, _, st = spike_plan.apply(mk.telemetry([("Z", 11 * H, "info")]), st)
    assert _opened(inc) == [("C", "open", 4, 0.0, None)]  # the one on time at 10.2 h counts too
