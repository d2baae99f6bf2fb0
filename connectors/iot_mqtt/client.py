"""The paho-mqtt 2.x client, configured for no loss: QoS 1, a persistent session under a
fixed client id, and **manual acks** — paho sends PUBACK only when :meth:`Client.ack` is called,
which the worker does after the message is landed.

MQTT 5: ``clean_start=False`` + Session Expiry Interval + Receive Maximum (how many unacked
messages the broker may have in flight to us: a micro-batch must fit in it).
MQTT 3.1.1: ``clean_session=False``; the broker's ``max_inflight_messages`` plays that role.

>>> from connectors.iot_mqtt.config import MqttConfig
>>> c = make_client(MqttConfig.from_dict({"client_id": "doc", "protocol": "3.1.1", "topics": []}))
>>> c._manual_ack, c._clean_session, c._client_id
(True, False, b'doc')
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from connectors.iot_mqtt.config import MqttConfig


def make_client(cfg: MqttConfig) -> mqtt.Client:
    """A client with manual ack, credentials and TLS from ``cfg``; not yet connected."""
    v5 = cfg.protocol == "5"
    kwargs = {"callback_api_version": CallbackAPIVersion.VERSION2, "client_id": cfg.client_id,
              "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311}
    if not v5:
        kwargs["clean_session"] = False
    client = mqtt.Client(**kwargs)
    client.manual_ack_set(True)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls is not None:
        t = cfg.tls
        client.tls_set(ca_certs=t.get("ca_certs"), certfile=t.get("certfile"), keyfile=t.get("keyfile"),
                       cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(bool(t.get("insecure", False)))
    return client


def connect(client: mqtt.Client, cfg: MqttConfig) -> None:
    """Connect keeping the session (MQTT 5: clean_start False, session expiry, receive maximum)."""
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry
        props.ReceiveMaximum = cfg.receive_maximum
        client.connect(cfg.host, cfg.port, cfg.keepalive, clean_start=False, properties=props)
    else:
        client.connect(cfg.host, cfg.port, cfg.keepalive)


def subscriptions(cfg: MqttConfig) -> list[tuple[str, int]]:
    """Every configured filter at QoS 1, as a shared subscription when ``shared_group`` is set.

    >>> from connectors.iot_mqtt.config import MqttConfig
    >>> subscriptions(MqttConfig.from_dict({"client_id": "d", "shared_group": "fleet",
    ...     "topics": [{"filter": "spBv1.0/#", "stream": "sparkplug", "format": "sparkplug"}]}))
    [('$share/fleet/spBv1.0/#', 1)]
    """
    return [(cfg.subscription(r.filter), cfg.qos) for r in cfg.topics]
