"""IoT devices over MQTT (JSON and Sparkplug B): land durably, ack after landing, drain per consumer.

Public API (see docs/adr/0280-mqtt-landing-and-ack.md):

- ``run_worker(config, home, process=None, stop=None, consumer="stream-worker") -> Stats``
- ``Worker(cfg, home, process, consumer)`` — ``.run(stop)``, ``.stats``; ``process`` a function (run on the
  worker's processing thread) or ``InChild(factory)`` (the passes in a child process, docs/adr/0286)
- ``drain(home, system, stream, consumer)`` / ``mark_done(...)`` — per-consumer cursors over landed parts
- ``MqttConfig.from_dict(config)``, ``MqttSource(config, home)`` (the registry's class)
- ``start_broker()`` — a local Mosquitto (amqtt fallback) for the demo
- ``simulator.run_fleet(...)`` — a simulated fleet (JSON + Sparkplug B)
"""

from connectors.iot_mqtt.child import InChild
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.consumers import drain, mark_done
from connectors.iot_mqtt.worker import Stats, Worker, run_worker

__all__ = ["InChild", "MqttConfig", "Stats", "Worker", "drain", "mark_done", "run_worker"]
