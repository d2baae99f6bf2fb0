"""The mapping engine: load + check a spec, compile it once, apply it per Arrow batch.

>>> from transforms import load_spec, compile_spec
>>> plan = compile_spec(load_spec("mappings/web_activity_to_lead.yaml"))
>>> sorted(t.entity for t in plan.targets)
['lead']
"""

from transforms.compile import MapResult, Plan, TargetOutput, compile_spec
from transforms.spec import Issue, Spec, SpecInvalid, load_spec, parse_spec

__all__ = ["load_spec", "parse_spec", "compile_spec", "Spec", "SpecInvalid", "Issue", "Plan", "MapResult", "TargetOutput"]
