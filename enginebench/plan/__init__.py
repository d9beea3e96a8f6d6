"""The run plan: what a config runs, derived once, for the workflow's rules to look up
(`plan.py`, `instances.py`), the schema and config checks before it (`schema.py`, `checks.py`) and
the paths it names (`paths.py`)."""

from enginebench.plan.checks import GGUF_OUTTYPES, ConfigError
from enginebench.plan.instances import Instance, Lock
from enginebench.plan.plan import Plan, PlanError, Run, names_regex
from enginebench.plan.schema import validate

__all__ = [
    "GGUF_OUTTYPES",
    "ConfigError",
    "Instance",
    "Lock",
    "Plan",
    "PlanError",
    "Run",
    "names_regex",
    "validate",
]
