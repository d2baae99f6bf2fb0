"""``weftline stream INTEGRATION`` — the long-running near-real-time worker (MQTT).

Subscribe → land → ack → process, until SIGTERM/SIGINT (the current micro-batch is
finished, acked and processed first). Processing is the runner's
``weftline.runner.stream_processor(integration, home)`` (map → load → lineage), in a child
process of its own (docs/adr/0286); ``--land-only`` only lands, for another consumer (Airflow) to drain.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import typer

from connectors.base.home import Home
from connectors.errors import ConfigError


def _processor(integration: str, mappings_dir: Path, home: Home, land_only: bool):
    """The runner's passes in a child process of their own (docs/adr/0286), or None: land only."""
    if land_only:
        return None
    from connectors.iot_mqtt.child import InChild
    from weftline.runner import stream_processor_of

    return InChild(partial(stream_processor_of, integration, str(mappings_dir), str(home.root)))


def stream(
    integration: str = typer.Argument(..., help="integration name (mappings/<name>.integration.yaml) or path"),
    mappings_dir: Path = typer.Option(Path("mappings"), help="where the integration and its specs live"),
    home: Path | None = typer.Option(None, envvar="WEFTLINE_HOME", help="weftline home (default ./.weftline)"),
    consumer: str = typer.Option("stream-worker", help="this worker's consumer name over the landing zone"),
    land_only: bool = typer.Option(False, "--land-only", help="land and ack only; do not map or load"),
    format: str = typer.Option("text", "--format", help="text | json: the final counts"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the near-real-time MQTT worker for INTEGRATION until SIGTERM / Ctrl-C."""
    from connectors.integration import load_integration
    from connectors.iot_mqtt.worker import run_worker

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    h = Home(home)
    it = load_integration(integration, mappings_dir, home=h, check_specs=False)
    if it.connector == "his":
        return _stream_mllp(it, h, mappings_dir, consumer, land_only, format)
    if it.connector != "iot_mqtt":
        raise ConfigError(f"{it.name}: `weftline stream` runs iot_mqtt (MQTT) and his (MLLP) integrations, "
                          f"not {it.connector}")
    stats = run_worker(dict(it.config), h, _processor(integration, mappings_dir, h, land_only), consumer=consumer)
    counts = {"received": stats.received, "acked": stats.acked, "quarantined": stats.quarantined,
              "landed": stats.landed, "processed_parts": stats.processed_parts,
              "process_failures": stats.process_failures}
    if format == "json":
        typer.echo(json.dumps(counts, sort_keys=True))
    else:
        typer.echo(f"stopped: received {stats.received}, acked {stats.acked}, quarantined {stats.quarantined}, "
                   f"landed {sum(stats.landed.values())}")


def _stream_mllp(it, home: Home, mappings_dir: Path, consumer: str, land_only: bool, format: str,
                 every: float = 1.0) -> None:
    """HIS over MLLP: the listener lands and ACKs; a drainer maps what landed every ``every`` seconds."""
    import threading

    from connectors.his.mllp import run_mllp
    from connectors.retention import Periodic
    from weftline.integrations import drain_landed

    log = logging.getLogger(__name__)
    stop = threading.Event()
    processed = {"reports": 0}
    retention = Periodic(home, it.connector, it.streams, it.landing_keep)  # landing.keep (ADR 0287)

    def drain_once() -> None:
        try:
            processed["reports"] += len(drain_landed(it.name, home, mappings_dir, consumer=consumer,
                                                     streams=list(it.streams)))
        except Exception as err:  # the parts stay pending for this consumer; the next tick retries them
            log.warning("draining %s failed, will retry: %s", it.name, err)
        retention()

    def drainer() -> None:
        while not stop.wait(every):
            drain_once()

    worker = None if land_only else threading.Thread(target=drainer, name="mllp-drainer", daemon=True)
    if worker:
        worker.start()
    counts = run_mllp(dict(it.config), home)  # blocks until SIGTERM / Ctrl-C
    stop.set()
    if worker:
        worker.join()
        drain_once()  # what landed between the last tick and shutdown
    counts = {**counts, "loads": processed["reports"]}
    if format == "json":
        typer.echo(json.dumps(counts, sort_keys=True))
    else:
        typer.echo("stopped: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
