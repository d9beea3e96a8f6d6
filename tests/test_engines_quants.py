"""Quant labels of the engines whose model format is prepared (MLC, TensorRT-LLM, EXL2).

`prepare.check_quant` is what the workflow's config check calls before any job runs: an unknown
label must fail there, in one line that names the bad value and the valid ones.
"""

from __future__ import annotations

import pytest

from enginebench.engines.mlc import QUANTIZATIONS
from enginebench.engines.prepare import check_quant
from enginebench.engines.spec import EngineConfigError

TRTLLM_OPTS = {"source_dir": "/src/trtllm"}


@pytest.mark.parametrize("quant", ["q4f16_1", "q0f16", "q4f16_autoawq", "e4m3_e4m3_f16"])
def test_mlc_known_quant_passes(quant: str) -> None:
    check_quant("mlc", quant, {})


@pytest.mark.parametrize("quant", ["q4f16_awq", "Q4F16_1", "q4_k_m", "hf", ""])
def test_mlc_unknown_quant_fails_in_one_line(quant: str) -> None:
    with pytest.raises(EngineConfigError) as exc:
        check_quant("mlc", quant, {})
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"mlc: unknown quant {quant!r}; known: ")
    assert "q4f16_1" in msg and "q0f16" in msg  # the fix: the valid names are listed
    assert msg.endswith(", ".join(QUANTIZATIONS))


def test_mlc_quant_list_is_sane() -> None:
    assert len(set(QUANTIZATIONS)) == len(QUANTIZATIONS)
    assert {"q0f16", "q0f32", "q3f16_1", "q4f16_1", "q4f32_1", "q4f16_ft"} <= set(QUANTIZATIONS)


@pytest.mark.parametrize(
    ("engine", "good", "bad", "listed", "opts"),
    [
        ("trtllm", "int4_wo", "fp8", "int4_wo", TRTLLM_OPTS),
        ("exllamav2", "4.0bpw", "q4", "4.0bpw", {}),
    ],
)
def test_other_prepared_engines_check_quant(
    engine: str, good: str, bad: str, listed: str, opts: dict[str, str]
) -> None:
    check_quant(engine, good, opts)
    with pytest.raises(EngineConfigError) as exc:
        check_quant(engine, bad, opts)
    msg = str(exc.value)
    assert "\n" not in msg and repr(bad) in msg and listed in msg
