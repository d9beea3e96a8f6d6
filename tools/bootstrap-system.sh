#!/usr/bin/env bash
# System packages the workflow needs beyond Python: a C/C++ toolchain for llama.cpp, and ccache
# (optional, makes llama.cpp rebuilds from a fresh clone cheap). cmake and ninja come from PyPI.
# Installs only what is missing, and only where it can (root with apt); otherwise it says what to do.
set -u
missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v gcc >/dev/null || missing+=(gcc)
command -v git >/dev/null || missing+=(git)
command -v ccache >/dev/null || missing+=(ccache)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        && exit 0
fi
echo "bootstrap: please install ${missing[*]} (ccache is optional)" >&2
command -v g++ >/dev/null && command -v gcc >/dev/null
