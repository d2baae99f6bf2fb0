"""Builders for event batches and plans used by the stateful-rule tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pyarrow as pa
import pytest

from transforms.stateful import compile_stateful

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)

OFFLINE = {
    "key": "device_id", "time": "event_time",
    "rules": [{"name": "offline", "transition": {"field": "status", "from": "online", "to": "offline", "for": "120s"},
               "emit": "open", "recover": {"to": "online", "emit": "close"}}],
    "cooldown": "30m", "dedup": ["device_id", "rule"],
}

SPIKE = {
    "key": "device_id", "time": "event_time",
    "rules": [{"name": "fault_spike", "rate": {"where": "event_type = 'fault'", "window": "1h", "baseline": "24h",
                                               "threshold": "300%", "min_count": 3}, "emit": "open"}],
    "cooldown": "2h",
}


def status_events(rows: list[tuple[str, float, str]]) -> pa.Table:
    """(device, seconds after T0, status) -> a device_status batch as the MQTT connector lands it."""
    return pa.table({
        "device_id": pa.array([r[0] for r in rows], pa.string()),
        "event_time": pa.array([T0 + timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
        "status": pa.array([r[2] for r in rows], pa.string()),
        "_wl_record_id": pa.array([f"{r[0]}-{r[1]}-{i}" for i, r in enumerate(rows)], pa.string()),
    })


def telemetry_events(rows: list[tuple[str, float, str]]) -> pa.Table:
    """(device, seconds after T0, event_type) -> a telemetry batch."""
    return pa.table({
        "device_id": pa.array([r[0] for r in rows], pa.string()),
        "event_time": pa.array([T0 + timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
        "event_type": pa.array([r[2] for r in rows], pa.string()),
        "severity": pa.array([2] * len(rows), pa.int64()),
    })


@pytest.fixture
def mk():
    """The builders: ``mk.T0``, ``mk.status(rows)``, ``mk.telemetry(rows)``, ``mk.OFFLINE``, ``mk.SPIKE``."""
    return SimpleNamespace(T0=T0, status=status_events, telemetry=telemetry_events, OFFLINE=OFFLINE, SPIKE=SPIKE)


@pytest.fixture
def offline_plan():
    return compile_stateful(OFFLINE, "device_offline_ticket")


@pytest.fixture
def spike_plan():
    return compile_stateful(SPIKE, "device_fault_spike_ticket")
