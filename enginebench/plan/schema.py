"""The config schema (workflow/schemas/config.schema.yaml): the config is validated against it
and its defaults filled in, as Snakemake's `validate` does; the schema is read by libyaml
(Snakemake reads it through yte, a tenth of a second of every plan)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from enginebench.plan.checks import fail


def _with_defaults(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if isinstance(instance, dict):
        for name, sub in properties.items():
            if "default" in sub:
                instance.setdefault(name, sub["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema
    )


_Validator = validators.extend(Draft202012Validator, {"properties": _with_defaults})


def validate(config: dict[str, Any], schema_file: str | Path) -> None:
    """Fill in the schema's defaults, or raise ConfigError naming the first key that is wrong."""
    if "sweep" in config:  # the key of enginebench <= 0.1, before named sweeps
        fail(
            "`sweep:` is now `sweeps:`, a mapping of named sweeps; "
            "move its keys under `sweeps: {default: {...}}`"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schema = yaml.load(Path(schema_file).read_text(), Loader=loader)
    error = best_match(_Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(map(str, error.absolute_path)) or "(top level)"
        fail(f"{where}: {error.message}")
