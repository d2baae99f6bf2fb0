"""Processing steps a spawned child process can import (``connectors.iot_mqtt.child.InChild`` pickles its
factory by module name): the DuckDB sink of the worker tests, and a step whose process dies."""

from __future__ import annotations

import os


def exits_on_first_batch(code: int):
    """A process function whose first batch ends the whole process with ``code`` (as a crash would)."""
    def process(tables):
        os._exit(code)

    return process


def fails_to_start(message: str):
    """A factory whose processing step cannot be built (as a broken spec would be)."""
    from connectors.errors import ConfigError

    raise ConfigError(message)


def waits_for_file(path: str):
    """A process function that blocks while ``path`` exists (a pass that hangs until the test lets it go)."""
    import time
    from pathlib import Path

    def process(tables):
        while Path(path).exists():
            time.sleep(0.05)

    return process
