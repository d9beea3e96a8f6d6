#!/usr/bin/env bash
# Offline bundle for the GPU machine (the `device` tool's nvidia-h200: x86-64, Python 3.12, no
# network). Run HERE (PyPI reachable), from anywhere:
#
#     tools/offline-bundle.sh [OUT]            # OUT defaults to <repo>/.device/bundle (git-ignored)
#
# OUT receives
#   wheels/         py3.12 manylinux x86_64 wheels of what the workflow needs there and that
#                   machine's python3 lacks (Snakemake 9.27.1 and its needs, PuLP, jsonschema,
#                   `transformers serve`'s fastapi/uvicorn/pydantic/openai, fastparquet), one
#                   version each, none of what it already has (torch and its family, numpy,
#                   transformers, tokenizers, huggingface_hub, ...): installed there with
#                   tools/offline-install.sh (pip --no-index --no-deps --target).
#   llama.cpp.git/  a bare git repository, one commit: the llama.cpp tree that llama-cpp-python's
#                   sdist vendors (resources/engines/llamacpp/src-pypi-*/) without models/, docs/,
#                   media/, benches/, tests/; use it with `source: git`,
#                   `git_url: file://<bundle>/llama.cpp.git`, `commit: <sha printed at the end>`.
#   wheels.txt, llama.cpp.commit, SHA256SUMS
#
# Then it checks the wheel set (tags fit cp312 manylinux_2_28 x86_64; one version per project;
# nothing the machine has; every Requires-Dist met by the bundle or the machine's package list
# below) and that the travelling working tree (tracked + untracked-not-ignored files + bundle)
# stays under the device call's 64 MiB. Over ~55 MiB the bundle is split into OUT-a/ (wheels)
# and OUT-b/ (llama.cpp.git), each with its own SHA256SUMS.
#
# Environment: PYTHON (an interpreter with pip, default <repo>/.venv/bin/python),
# LLAMA_SRC (the vendored tree, default the newest resources/engines/llamacpp/src-pypi-*),
# BUNDLE_SPLIT_MIB (default 55).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$REPO/.device/bundle}
PY=${PYTHON:-$REPO/.venv/bin/python}
SPLIT_MIB=${BUNDLE_SPLIT_MIB:-55}   # over this the bundle is split in two
# shellcheck source=tools/device-travel.sh
. "$REPO/tools/device-travel.sh"   # TRAVEL_MIB, travel_repo_bytes, travel_shared_bytes
die() { echo "offline-bundle: $*" >&2; exit 1; }
say() { echo "offline-bundle: $*"; }

[ -x "$PY" ] || PY=$(command -v python3) || die "no python3 with pip"
"$PY" -m pip --version >/dev/null || die "$PY has no pip"
command -v git >/dev/null || die "git not found"

if [ -z "${LLAMA_SRC:-}" ]; then
    LLAMA_SRC=$(ls -d "$REPO"/resources/engines/llamacpp/src-pypi-* 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$LLAMA_SRC" ] && [ -f "$LLAMA_SRC/CMakeLists.txt" ] && [ -f "$LLAMA_SRC/convert_hf_to_gguf.py" ] \
    || die "no llama.cpp source tree (set LLAMA_SRC; the workflow's llamacpp_source rule makes one)"

# The target: what `pip download` must match (the machine's python3 is CPython 3.12.3, glibc >= 2.28).
TARGET=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64
        --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64
        --platform manylinux1_x86_64 --platform any)

# The wheels: resolved for cp312 with `pip install --dry-run --report` (uploaded before 2026-10-22,
# the day after Snakemake 9.27.1; pydantic < 2.14, whose typing-extensions floor is 4.14.1 rather
# than 4.16.0), minus everything on the machine's list below. Pinned: a re-run fetches the same set.
PINS=(
    # Snakemake 9.27.1 and its pure needs
    snakemake==9.27.1
    snakemake-interface-common==1.23.0
    snakemake-interface-executor-plugins==9.4.0
    snakemake-interface-logger-plugins==2.1.0
    snakemake-interface-report-plugins==1.3.0
    snakemake-interface-scheduler-plugins==2.0.2
    snakemake-interface-storage-plugins==4.4.1
    argparse-dataclass==2.0.0 conda-inject==1.3.2 ConfigArgParse==1.8.0 docutils==0.22.4
    dpath==2.2.0 GitPython==3.2.1 gitdb==4.0.12 smmap==5.0.3 humanfriendly==10.0
    immutables==0.21 nbformat==5.11.1 fastjsonschema==2.22.2 jupyter_core==5.9.1
    traitlets==5.16.1 platformdirs==4.13.5 smart_open==7.7.1 tenacity==9.2.1 throttler==1.2.3
    yte==1.9.4 sqlmodel==0.0.37 SQLAlchemy==2.0.55 greenlet==3.5.6
    # Snakemake's ILP scheduler (with its bundled CBC), and the config schema's validator
    PuLP==3.3.2
    jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
    # transformers 5.17.0 [serving]: openai, pydantic, uvicorn, fastapi, starlette (rich,
    # accelerate and torch are on the machine)
    fastapi==0.159.1 starlette==1.9.0 uvicorn==0.54.0 opentelemetry-api==1.45.1
    pydantic==2.13.5 pydantic_core==2.46.5 annotated-types==0.8.0 typing-inspection==0.4.4
    openai==3.36.0 httpx2==2.16.0 httpcore2==2.16.0 truststore==0.10.5 jiter==0.17.0 sniffio==1.3.1
    # Parquet fallback: the machine lists pyarrow (pandas' first choice); fastparquet round-trips
    # the tidy table identically should pyarrow be absent or broken there
    fastparquet==2026.9.0 cramjam==2.14.0
    # python-dateutil >= 3 needs it (the machine's may be older, then it is unused)
    tzdata==2026.5
)
# sdist only on PyPI: a wheel is built here (pure Python)
BUILD=(connection_pool==0.0.3)
# What the workflow uses there: every wheel must be needed by one of these (checked below)
ROOTS=(snakemake PuLP jsonschema fastapi uvicorn pydantic starlette openai fastparquet cramjam tzdata)

# The machine's python3 (KINDS.md, image 'cuda', read 2026-11-17): names, and the versions seen.
MACHINE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio
h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime
onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"
MACHINE_VERSIONS="accelerate==1.15.0 huggingface-hub==1.33.0 numpy==2.5.2 safetensors==0.8.0
sentencepiece==0.2.2 tiktoken==0.14.0 tokenizers==0.23.2 torch==2.11.0 torchaudio==2.11.0
torchvision==0.26.0 transformers==5.17.0 triton==3.6.0"

# --- wheels ----------------------------------------------------------------------------------
if [ -e "$OUT" ] || [ -e "$OUT-a" ] || [ -e "$OUT-b" ]; then
    for d in "$OUT" "$OUT-a" "$OUT-b"; do
        [ -e "$d" ] || continue
        [ -f "$d/SHA256SUMS" ] || [ -z "$(ls -A "$d")" ] || die "$d exists and is no bundle: not touching it"
        rm -rf "$d"
    done
fi
mkdir -p "$OUT/wheels"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say "downloading ${#PINS[@]} wheels (cp312, manylinux x86_64) ..."
"$PY" -m pip download -q --no-deps "${TARGET[@]}" -d "$OUT/wheels" "${PINS[@]}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
say "building ${BUILD[*]} (sdist only) ..."
"$PY" -m pip wheel -q --no-deps --no-binary :all: -w "$OUT/wheels" "${BUILD[@]}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
n=$(ls "$OUT"/wheels/*.whl | wc -l)
[ "$n" -eq $(( ${#PINS[@]} + ${#BUILD[@]} )) ] || die "expected $(( ${#PINS[@]} + ${#BUILD[@]} )) wheels, got $n"

# --- checks of the set (the machine cannot resolve anything: every need must be here or there) ---
# (tools/wheelset_check.py: tags up to manylinux_2_28, one version each, nothing the machine has,
# every Requires-Dist met here or there, every wheel needed by one of ROOTS)
note="Snakemake caps packaging < 26; the machine's may be 26.x, which Snakemake 9.27.1 runs with"
note+=" (it uses only packaging.version); tools/offline-install.sh reports the real one"
"$PY" "$REPO/tools/wheelset_check.py" "$OUT/wheels" --messages offline-bundle \
    --max-manylinux 28 --shadow error --roots "${ROOTS[*]}" --assumed-note packaging "$note" \
    --machine-has "$MACHINE_HAS" --machine-versions "$MACHINE_VERSIONS"
(cd "$OUT/wheels" && ls *.whl) | "$PY" -c '
import sys
from packaging.utils import parse_wheel_filename
for line in sys.stdin:
    n, v, _, _ = parse_wheel_filename(line.strip())
    print(f"{n}=={v}")' | sort > "$OUT/wheels.txt"

# --- llama.cpp as a one-commit bare repository ---------------------------------------------------
STRIP='models|docs|media|benches|tests'   # top-level only (src/models/, tools/mtmd/models/ stay)
BARE="$OUT/llama.cpp.git"
git init -q --bare "$BARE"
g() { git --git-dir="$BARE" "$@"; }
# The upstream commit the tree is at, and whether the tree is exactly that commit's.
upstream=$(git -c safe.directory='*' -C "$LLAMA_SRC" rev-parse --verify -q 'HEAD^{commit}' 2>/dev/null || true)
if [ -n "$upstream" ] && [ "$(git -c safe.directory='*' -C "$LLAMA_SRC" rev-parse --show-toplevel)" = "$(cd "$LLAMA_SRC" && pwd -P)" ] \
        && [ -z "$(git -c safe.directory='*' -C "$LLAMA_SRC" status --porcelain --untracked-files=no)" ]; then
    # the committed tree (upstream's bytes and modes), read without touching the source repo
    g -c safe.directory='*' fetch -q --no-tags --depth 1 "$LLAMA_SRC" "$upstream"
    full_tree=$(g rev-parse "$upstream^{tree}")
    when=$(g log -1 --format=%cI "$upstream")
    origin="llama.cpp commit $upstream"
else
    # no git dir (or local edits): the files as they are, less what the tree's .gitignore names
    GIT_INDEX_FILE="$WORK/index" GIT_WORK_TREE="$LLAMA_SRC" g add -A -- . \
        ':(exclude)enginebench-source.json' ':(exclude).snakemake_timestamp'
    full_tree=$(GIT_INDEX_FILE="$WORK/index" g write-tree)
    when=${SOURCE_DATE_EPOCH:+@$SOURCE_DATE_EPOCH}
    when=${when:-2026-10-01T00:00:00+00:00}
    origin="the llama.cpp tree in $(basename "$LLAMA_SRC")${upstream:+ (at $upstream, with local changes)}"
fi
tree=$(g ls-tree "$full_tree" | grep -Ev $'\t'"($STRIP)\$" | g mktree)
src_json="$LLAMA_SRC/enginebench-source.json"
sdist=$( [ -f "$src_json" ] && "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("sdist") or "")' "$src_json" || true)
msg="llama.cpp for offline builds: ${origin}${sdist:+, as vendored by $sdist}

Without the top-level folders models/ docs/ media/ benches/ tests/ (not needed to build
llama-server, llama-quantize and llama-bench, nor by convert_hf_to_gguf.py + gguf-py).
Made by enginebench tools/offline-bundle.sh."
export GIT_AUTHOR_NAME="enginebench offline bundle" GIT_AUTHOR_EMAIL="enginebench@localhost"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="$when" GIT_COMMITTER_DATE="$when"
commit=$(g commit-tree "$tree" -m "$msg")   # no parent: the same tree always gives this sha
g update-ref refs/heads/master "$commit"
g symbolic-ref HEAD refs/heads/master
rm -f "$BARE/FETCH_HEAD" "$BARE/shallow"
g config uploadpack.allowAnySHA1InWant true
g reflog expire --expire=now --all
g repack -q -a -d -f --window=250 --depth=50
g prune --expire=now
g fsck --no-progress --strict >/dev/null 2>&1 || g fsck --no-progress >/dev/null || die "git fsck failed on $BARE"
[ "$(g rev-list --all | wc -l)" -eq 1 ] || die "$BARE holds more than one commit"
echo "$commit" > "$OUT/llama.cpp.commit"

# --- sums, size, split ----------------------------------------------------------------------------
sums() { (cd "$1" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort \
          | xargs -d '\n' sha256sum > SHA256SUMS); }
mib() { du -sb "$@" | awk '{s += $1} END {printf "%.1f", s / 1048576}'; }
dirs=("$OUT")
if awk -v s="$(mib "$OUT")" -v l="$SPLIT_MIB" 'BEGIN {exit !(s > l)}'; then
    say "$(mib "$OUT") MiB is over ${SPLIT_MIB} MiB: splitting into $OUT-a (wheels) and $OUT-b (llama.cpp.git)"
    mkdir -p "$OUT-a" "$OUT-b"
    mv "$OUT/wheels" "$OUT/wheels.txt" "$OUT-a/"
    mv "$OUT/llama.cpp.git" "$OUT/llama.cpp.commit" "$OUT-b/"
    rmdir "$OUT"
    BARE="$OUT-b/llama.cpp.git"
    dirs=("$OUT-a" "$OUT-b")
fi
for d in "${dirs[@]}"; do sums "$d"; done

# What travels with a device call: tracked + untracked-not-ignored files (+ shared/), + the bundle.
tree_bytes=$(travel_repo_bytes "$REPO")
shared_bytes=$(travel_shared_bytes "$REPO")
bundle_bytes=$(du -sb "${dirs[@]}" | awk '{s += $1} END {print s}')
total=$(( tree_bytes + shared_bytes + bundle_bytes ))

echo
say "wheels ($(ls "${dirs[0]}"/wheels/*.whl | wc -l), $(mib "${dirs[0]}/wheels") MiB): $(tr '\n' ' ' < "${dirs[0]}/wheels.txt")"
say "llama.cpp.git: $(mib "$BARE") MiB, one commit $commit ($origin, without models/ docs/ media/ benches/ tests/)"
for d in "${dirs[@]}"; do say "bundle folder: $d ($(mib "$d") MiB)"; done
say "total bundle size: $(awk -v b="$bundle_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB"
say "travelling tree: repo files $(awk -v b="$tree_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB + shared/ $(awk -v b="$shared_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB + bundle = $(awk -v b="$total" 'BEGIN {printf "%.1f", b / 1048576}') MiB (limit ${TRAVEL_MIB} MiB)"
if [ "$total" -ge $(( TRAVEL_MIB * 1048576 )) ]; then
    say "WARNING: over ${TRAVEL_MIB} MiB: carry the folders in separate calls (one per call, the machine kept warm)"
fi
case "$OUT/" in
    "$REPO"/*) where="<repo root there>/${BARE#"$REPO"/}"; carry="${dirs[*]/#"$REPO"\//}" ;;
    *) where="<where it lies there>/${BARE##*/}"; carry="(outside the repo: copy it into a git-ignored folder of the repo to travel)" ;;
esac
echo
say "on the GPU machine (carry: $carry):"
echo "    tools/offline-install.sh ${dirs[*]/#"$REPO"\//}"
echo "  and in the workflow config (engines.llamacpp):"
echo "    source: git"
echo "    git_url: file://$where"
echo "    commit: \"$commit\""
echo "llama.cpp commit: $commit"
