"""Integrations: ``mappings/<name>.integration.yaml`` — a connector configuration bound to specs.

The file holds no secrets; a value may be a reference, resolved only when the integration
is loaded for a run:

- ``{env: NAME, default: ...}`` — the environment variable (``default`` when unset; an error
  when unset without one);
- ``{airflow_conn: conn_id, field: uri|host|login|password|schema|port|extra}`` — an Airflow
  connection (imported lazily, only when referenced), its URI by default.

``{home}`` in any text is replaced by ``$WEFTLINE_HOME``. Resolved secret values never show in
``repr`` or logs: they print as ``<env:NAME>`` / ``<airflow_conn:ID>``.

>>> import os, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "demo.integration.yaml").write_text('''
... integration: demo
... source:
...   connector: erp_sql
...   config: {url: {env: DEMO_ERP_URL, default: "sqlite:///{home}/erp.sqlite"}, batch_size: 10}
... streams: {orders: {mappings: [erp_order_to_account]}}
... schedule: "@hourly"
... ''')
>>> os.environ["DEMO_ERP_URL"] = "postgresql://erp:s3cret@db/erp"
>>> it = load_integration("demo", d, home=Home("/tmp/wl"), check_specs=False)
>>> it.config["url"], it.streams
('postgresql://erp:s3cret@db/erp', {'orders': ('erp_order_to_account',)})
>>> "s3cret" in repr(it)
False
>>> del os.environ["DEMO_ERP_URL"]
>>> load_integration(d / "demo.integration.yaml", home=Home("/tmp/wl"), check_specs=False).config["url"]
'sqlite:////tmp/wl/erp.sqlite'
>>> list_integrations(d)
['demo']
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from connectors.base.home import Home
from connectors.errors import ConfigError

log = logging.getLogger(__name__)
SUFFIX = ".integration.yaml"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "integration.schema.json"
CONN_FIELDS = ("uri", "host", "login", "password", "schema", "port", "extra")


@dataclass(frozen=True)
class Integration:
    name: str
    connector: str
    config: dict[str, Any] = field(repr=False)
    streams: dict[str, tuple[str, ...]]  # stream → spec names (mappings/<name>.yaml)
    destination: str | None = field(repr=False)
    schedule: str | None
    path: Path | None = None
    load_rows: int = 1_000_000  # a sync's batches go into one load until it holds this many rows (ADR 0207)
    landing_keep: timedelta | None = None  # landing retention (connectors/retention.py, ADR 0287); None: keep all
    secret_labels: dict[tuple, str] = field(default_factory=dict, repr=False)  # value path → "<env:NAME>"

    def __repr__(self) -> str:
        config = _masked(self.config, ("config",), self.secret_labels)
        dest = self.secret_labels.get(("destination",), self.destination)
        return (f"Integration(name={self.name!r}, connector={self.connector!r}, config={config!r}, "
                f"streams={self.streams!r}, destination={dest!r}, schedule={self.schedule!r})")

    def source(self, home: Home):
        """Build the connector's source (``Cls(config, home)``) through connectors.registry."""
        from connectors.registry import source_class

        return source_class(self.connector)(dict(self.config), home)


def _masked(value: Any, path: tuple, labels: dict[tuple, str]) -> Any:
    if path in labels:
        return labels[path]
    if isinstance(value, dict):
        return {k: _masked(v, (*path, k), labels) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, (*path, i), labels) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------- reading and validating


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(schema)


def _line(node: yaml.Node | None, path: list) -> int:
    """The 1-based line of ``path`` in the composed YAML (the nearest existing ancestor)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def read_integration_file(path: Path) -> dict:
    """Parse and validate one file against schemas/integration.schema.json; secrets unresolved."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML: {exc}") from exc
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        issues = [f"{path}:{_line(root, list(e.absolute_path))}: "
                  f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]
        raise ConfigError("\n".join(issues))
    expected = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else None
    if expected and data["integration"] != expected:
        raise ConfigError(f"{path}:{_line(root, ['integration'])}: integration is {data['integration']!r} "
                          f"but the file is named for {expected!r}")
    return data


# ---------------------------------------------------------------- secret references


def _airflow_conn(conn_id: str, part: str) -> Any:
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except ImportError:  # older Airflow
        from airflow.hooks.base import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise ConfigError(f"Airflow connection {conn_id!r} cannot be read: {type(exc).__name__}: {exc}") from None
    return conn.get_uri() if part == "uri" else getattr(conn, part)


def _resolve_ref(ref: dict, where: str) -> tuple[Any, str]:
    if "env" in ref:
        name = ref["env"]
        if name in os.environ:
            return os.environ[name], f"<env:{name}>"
        if "default" in ref:
            return ref["default"], f"<env:{name}>"
        raise ConfigError(f"{where}: environment variable {name} is not set and has no default")
    part = ref.get("field", "uri")
    return _airflow_conn(ref["airflow_conn"], part), f"<airflow_conn:{ref['airflow_conn']}>"


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and ("env" in value or "airflow_conn" in value)


def resolve(value: Any, home: Home, where: str, path: tuple = (), labels: dict | None = None) -> Any:
    """Resolve references and ``{home}`` in ``value``; record the label of each secret by path."""
    labels = {} if labels is None else labels
    if _is_ref(value):
        value, labels[path] = _resolve_ref(value, where)
        return value.replace("{home}", str(home.root)) if isinstance(value, str) else value
    if isinstance(value, dict):
        return {k: resolve(v, home, where, (*path, k), labels) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, home, where, (*path, i), labels) for i, v in enumerate(value)]
    return value.replace("{home}", str(home.root)) if isinstance(value, str) else value


# ---------------------------------------------------------------- the public entry points


def integration_path(name_or_path: str | os.PathLike, mappings_dir: str | os.PathLike = "mappings") -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return Path(mappings_dir) / f"{name_or_path}{SUFFIX}"


def _check_streams(connector: str, streams: dict, where: str) -> None:
    from connectors.registry import SOURCES, source_class

    if connector not in SOURCES:
        raise ConfigError(f"{where}: unknown connector {connector!r}; known: {', '.join(sorted(SOURCES))}")
    try:
        declared = {s.name for s in source_class(connector).streams}
    except ImportError:
        log.warning("connector %s is not importable here; its stream names are not checked", connector)
        return
    unknown = sorted(set(streams) - declared)
    if unknown:
        raise ConfigError(f"{where}: {connector} has no stream(s) {unknown}; streams: {', '.join(sorted(declared))}")


def load_integration(name_or_path: str | os.PathLike, mappings_dir: str | os.PathLike = "mappings", *,
                     home: Home | None = None, resolve_secrets: bool = True, check_specs: bool = True) -> Integration:
    """Load, validate and (unless ``resolve_secrets=False``) resolve one integration.

    ``resolve_secrets=False`` keeps the references as they are written (for the DAG factory:
    no secret reads at parse time). ``check_specs`` requires ``mappings/<spec>.yaml`` to exist.
    """
    path = integration_path(name_or_path, mappings_dir)
    if not path.exists():
        raise ConfigError(f"no integration {str(name_or_path)!r}: {path} does not exist "
                          f"(known: {', '.join(list_integrations(mappings_dir)) or 'none'})")
    data = read_integration_file(path)
    home = home or Home()
    where = str(path)
    connector = data["source"]["connector"]
    streams = {s: tuple(v["mappings"]) for s, v in data["streams"].items()}
    _check_streams(connector, streams, where)
    if check_specs:
        missing = sorted({m for ms in streams.values() for m in ms if not (path.parent / f"{m}.yaml").exists()})
        if missing:
            raise ConfigError(f"{where}: mapping spec(s) not found beside it: {', '.join(f'{m}.yaml' for m in missing)}")
    labels: dict[tuple, str] = {}
    config = data["source"].get("config") or {}
    destination = data.get("destination")
    if resolve_secrets:
        config = resolve(config, home, where, ("config",), labels)
        destination = resolve(destination, home, where, ("destination",), labels)
        log.info("integration %s: resolved %d secret reference(s): %s", data["integration"], len(labels),
                 ", ".join(sorted(labels.values())))
    return Integration(name=data["integration"], connector=connector, config=config, streams=streams,
                       destination=destination, schedule=data.get("schedule"), path=path, secret_labels=labels,
                       load_rows=int(data.get("load_rows", Integration.load_rows)),
                       landing_keep=_keep(data, where))


def _keep(data: dict, where: str) -> timedelta | None:
    keep = (data.get("landing") or {}).get("keep")
    if keep is None:
        return None
    from connectors.retention import parse_keep

    try:
        return parse_keep(keep)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def list_integrations(mappings_dir: str | os.PathLike = "mappings") -> list[str]:
    """Names of the integrations in ``mappings_dir`` (no file is parsed, nothing resolved)."""
    d = Path(mappings_dir)
    return sorted(p.name[: -len(SUFFIX)] for p in d.glob(f"*{SUFFIX}")) if d.is_dir() else []
