"""tap-weftline-fhir: the FHIR side of the HIS source as a Singer tap (singer-sdk).

Run: ``python -m connectors.his.tap --config config.json [--state state.json]`` with
``{"fhir_base_url": URL}`` (FHIR R4 REST search, incremental on ``last_updated``, sent as
``_lastUpdated=gt…``; from a bookmark the type's ``_history?_since=…`` is read first and its
deletes come as records with ``_op = 'delete'``, in ``last_updated`` order with the search
results — docs/adr/0243; a bearer token only through ``fhir_token_env``, the name of an
environment variable) or ``{"fhir_dir": DIR}`` (JSON / Bundle / NDJSON files, re-read in full).
Streams: ``fhir_medication_request``, ``fhir_patient``, ``fhir_practitioner``,
``fhir_organization``; records are the rows the weftline runner lands (one parser).

>>> tap = FhirTap(config={"fhir_base_url": "http://127.0.0.1:9/fhir"}, validate_config=True)
>>> sorted(tap.streams)[0], tap.streams["fhir_patient"].primary_keys, tap.streams["fhir_patient"].replication_key
('fhir_medication_request', ['id'], 'last_updated')
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Tap
from singer_sdk import typing as th

from connectors.base.home import Home
from connectors.his.fhir_records import STREAMS
from connectors.his.source import HisSource
from connectors.singer.stream import SourceStream


class FhirStream(SourceStream):
    primary_keys = ["id"]

    def __init__(self, tap, source) -> None:
        super().__init__(tap, source)
        self.replication_key = "last_updated" if source.config.get("fhir_base_url") else None

    @property
    def is_sorted(self) -> bool:
        return bool(self.source.config.get("fhir_base_url"))  # searched with _sort=_lastUpdated

    def source_state(self, start: Any):
        return {"last_updated": str(start).replace("+00:00", "Z")} if self.is_sorted else {}


def _stream_class(stream: str) -> type[FhirStream]:
    return type(f"FhirStream_{stream}", (FhirStream,), {"name": stream, "schema_name": f"his.{stream}"})


STREAM_CLASSES = [_stream_class(s) for s in STREAMS.values()]


class FhirTap(Tap):
    name = "tap-weftline-fhir"
    config_jsonschema = th.PropertiesList(
        th.Property("fhir_base_url", th.StringType, description="Base URL of a FHIR R4 server."),
        th.Property("fhir_dir", th.StringType, description="Folder of FHIR JSON, Bundle or NDJSON files."),
        th.Property("fhir_token_env", th.StringType, description="Name of the env variable holding a bearer token."),
        th.Property("page_size", th.IntegerType, description="_count per search page."),
    ).to_dict()

    def discover_streams(self) -> list[FhirStream]:
        source = HisSource(dict(self.config), Home())
        return [cls(self, source) for cls in STREAM_CLASSES]


if __name__ == "__main__":
    FhirTap.cli()
