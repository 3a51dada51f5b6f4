#!/usr/bin/env bash
# Regenerates the man page from the clap definition.
# Run from the repository root: bash man/generate.sh
set -euo pipefail
cargo run --quiet --example man > man/ect-run.1
