#!/usr/bin/env bash
# Try ect-run on a real failure inside toolbox code, sending nothing:
#
#     bash examples/try-it.sh
#
# Builds ect-run (the first build takes about two minutes), runs
# `ect-run --dry-run -- python3 examples/run_analysis.py` with a private,
# empty config (your own is not read or changed), shows the report that
# would be sent, and exits 0 when all of that worked.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

echo "== Building ect-run (cargo build; the first build takes about two minutes)"
cargo build --quiet --bin ect-run
bin=target/debug/ect-run

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private home: your own consent, config and outbox stay untouched.
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state"
mkdir -p "$HOME"
unset ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL ECT_RUN_CONFIG ECT_RUN_STATE_DIR
# The real toolbox when it is installed; else a stand-in with its test failure.
if ! "$python" -c "import esa_climate_toolbox.util.reporting" 2>/dev/null; then
    export PYTHONPATH="$PWD/examples/standin${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "== Running: ect-run --dry-run -- $python examples/run_analysis.py"
set +e
"$bin" --dry-run -- "$python" examples/run_analysis.py 2> "$tmp/stderr"
status=$?
set -e
cat "$tmp/stderr"

echo
if [ "$status" -ne 1 ]; then
    echo "== Something is wrong: the job should have exited with status 1, and ect-run passed on $status." >&2
    exit 1
fi
if ! grep -q "dry run: this report would be sent to http://localhost:9898" "$tmp/stderr"; then
    echo "== Something is wrong: ect-run did not show the report it would send (see above)." >&2
    exit 1
fi
cat <<'DONE'
== It worked.
   The job failed inside the toolbox's code (the traceback above is its own
   stderr, passed through untouched), and ect-run passed on its exit status
   (1). ect-run read the traceback, found the toolbox's frame, and printed the
   exact report it would send to the toolbox's reporting server. Because of
   --dry-run, and because you have not consented, nothing was sent.
   Next: `ect-run --consent` to opt in, `ect-run --status` to see the settings.
DONE
