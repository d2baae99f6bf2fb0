"""Connector names → their source classes, imported lazily by dotted path (declared, not coded).

>>> sorted(SOURCES)[:2]
['call_analytics', 'erp_sql']
"""

from __future__ import annotations

import importlib

from connectors.errors import ConfigError

SOURCES: dict[str, str] = {
    "erp_sql": "connectors.erp_sql.source:ErpSqlSource",
    "his": "connectors.his.source:HisSource",
    "call_analytics": "connectors.call_analytics.source:CallAnalyticsSource",
    "web_analytics": "connectors.web_analytics.source:WebAnalyticsSource",
    "iot_mqtt": "connectors.iot_mqtt.source:MqttSource",
    "file": "connectors.file.source:FileSource",
}


def source_class(name: str) -> type:
    try:
        target = SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown connector {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
