"""Run a stream worker in its own process (so a test can kill -9 it):
``python worker_proc.py CONFIG_JSON HOME DUCKDB [thread|child]``. Touches HOME/ready once connected; with
``child`` (the passes in a child process, as ``weftline stream`` runs them) also writes HOME/child.pid."""

from __future__ import annotations

import json
import logging
import sys
import threading
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from duck_sink import duck_sink  # noqa: E402

from connectors.base.home import Home  # noqa: E402
from connectors.iot_mqtt.child import InChild  # noqa: E402
from connectors.iot_mqtt.config import MqttConfig  # noqa: E402
from connectors.iot_mqtt.worker import Worker, stop_on_signals  # noqa: E402


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    cfg = MqttConfig.from_dict(json.loads(Path(sys.argv[1]).read_text()))
    home = Home(sys.argv[2])
    stop = threading.Event()
    stop_on_signals(stop)
    child = len(sys.argv) > 4 and sys.argv[4] == "child"
    w = Worker(cfg, home, InChild(partial(duck_sink, sys.argv[3])) if child else duck_sink(sys.argv[3]))

    def ready() -> None:
        if w.connected.wait(60):
            home.root.mkdir(parents=True, exist_ok=True)
            if child:
                (home.root / "child.pid").write_text(str(w.child.proc.pid))
            (home.root / "ready").touch()

    threading.Thread(target=ready, daemon=True).start()
    stats = w.run(stop)
    (home.root / "stats.json").write_text(json.dumps(stats.__dict__))


if __name__ == "__main__":
    main()
