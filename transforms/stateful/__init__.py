"""Stateful event rules: keyed state over event batches, before the field mapping.

A spec's ``stateful:`` section turns a stream of events (device status, telemetry)
into *incident* rows (open / annotate / close), which the ordinary ``fields:`` mapping
then turns into CRM records. See docs/stateful-rules.md.

>>> from transforms.stateful import compile_stateful, load_state, save_state, State
>>> plan = compile_stateful({"key": "device_id", "time": "event_time",
...                          "rules": [{"transition": {"field": "status", "to": "offline"}}]}, "x")
>>> plan.incident_schema.names[:5]
['device_id', 'rule', 'kind', 'action', 'incident_key']
"""

from transforms.stateful.incidents import incident_schema
from transforms.stateful.plan import StatefulPlan, check_stateful, compile_stateful
from transforms.stateful.spec import StatefulSpecError
from transforms.stateful.state import State, StateConflict, load_state, save_state
from transforms.stateful.testing import run_events, run_for_test

__all__ = ["State", "StateConflict", "StatefulPlan", "StatefulSpecError", "check_stateful", "compile_stateful", "incident_schema", "load_state",
           "run_events", "run_for_test", "save_state"]
