"""The registry's MqttSource: declared streams whose JSON Schemas match what is landed."""

import json
from pathlib import Path

import pytest

from connectors.errors import ConfigError
from connectors.iot_mqtt.records import DEVICE_STATUS, SPARKPLUG, SPARKPLUG_EVENTS
from connectors.iot_mqtt.source import MqttSource
from connectors.registry import source_class

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name,arrow", [("device_status", DEVICE_STATUS), ("sparkplug", SPARKPLUG),
                                        ("sparkplug_events", SPARKPLUG_EVENTS)])
def test_json_schema_lists_every_landed_column_and_the_identity(name, arrow):
    stream = next(s for s in MqttSource.streams if s.name == name)
    doc = json.loads((ROOT / stream.schema_file).read_text())
    assert set(doc["properties"]) == set(arrow.names)
    assert tuple(doc["x-key"]) == stream.key and doc.get("x-position") == stream.position


def test_registry_builds_it_and_read_explains_push_style(home):
    src = source_class("iot_mqtt")({"client_id": "w", "topics": []}, home)
    with pytest.raises(ConfigError, match="push-style"):
        next(src.read("telemetry", {}))


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="client_id is required"):
        MqttSource({"topics": []}, None)
    with pytest.raises(ConfigError, match="only QoS 1"):
        MqttSource({"client_id": "w", "qos": 0, "topics": []}, None)
    with pytest.raises(ConfigError, match="WL_NOPE"):
        MqttSource({"client_id": "w", "password": {"env": "WL_NOPE"}, "topics": []}, None)
