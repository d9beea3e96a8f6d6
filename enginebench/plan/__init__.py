"""The run plan: what a config runs, derived once, for the workflow's rules to look up
(`plan.py`), the config checks behind it (`checks.py`) and the paths it names (`paths.py`)."""

from enginebench.plan.checks import GGUF_OUTTYPES, ConfigError, check_keys
from enginebench.plan.plan import Instance, Lock, Plan, PlanError, Run, names_regex

__all__ = [
    "GGUF_OUTTYPES",
    "ConfigError",
    "Instance",
    "Lock",
    "Plan",
    "PlanError",
    "Run",
    "check_keys",
    "names_regex",
]
