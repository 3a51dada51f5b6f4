#!/usr/bin/env bash
# Sets up, once per machine, what the test suite needs beyond Rust: a Python
# virtual environment with Bugsink (a Sentry-protocol tracker, pinned in
# bugsink-requirements.txt) and a template of its databases, migrated once,
# so that each test run starts Bugsink in about a second.
#
# Prints two lines for tests/support/bugsink.rs:
#     python=<the environment's python>
#     template=<directory with the migrated databases>
#
# Idempotent and safe to run from parallel test processes: setting up
# happens under a lock, and a directory is used only once complete (its
# `ready` file is written last). Cached outside the clone in
# ${XDG_CACHE_HOME:-$HOME/.cache}/ect-run-test/: the environment keyed by
# the requirements and the Python version, the template also by the server
# script that writes Bugsink's settings.
#
# Needs python3 3.11 or newer with venv (or ECT_RUN_TEST_PYTHON naming
# one) and, the first time, the Python package index.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/bugsink-requirements.txt"
server="$here/bugsink_test_server.py"

pick_python() {
    local p
    for p in "${ECT_RUN_TEST_PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$p" ] || continue
        if command -v "$p" >/dev/null 2>&1 \
            && "$p" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "test-env.sh: the Bugsink tests need Python 3.11 or newer with venv (set ECT_RUN_TEST_PYTHON)" >&2
    return 1
}

hash12() { cat "$@" | sha256sum | cut -c1-12; }

python="$(pick_python)"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
bugsink="$(sed -n 's/^bugsink==//p' "$requirements")"
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ect-run-test"
env_dir="$cache/bugsink-$bugsink-py$pyver-$(hash12 "$requirements")"
template="$env_dir/template-$(hash12 "$server")"

report() {
    echo "python=$env_dir/venv/bin/python"
    echo "template=$template"
}

if [ -f "$env_dir/ready" ] && [ -f "$template/ready" ]; then
    report
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
# Another process may have finished while this one waited for the lock.
if [ ! -f "$env_dir/ready" ]; then
    echo "test-env.sh: installing Bugsink $bugsink for the tests, once (about a minute)" >&2
    rm -rf "$env_dir"
    "$python" -m venv "$env_dir/venv" >&2
    "$env_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$requirements" >&2
    touch "$env_dir/ready"
fi
if [ ! -f "$template/ready" ]; then
    echo "test-env.sh: migrating Bugsink's template databases, once" >&2
    rm -rf "$template"
    "$env_dir/venv/bin/python" "$server" "$template" --migrate-only >&2
    touch "$template/ready"
fi
report
