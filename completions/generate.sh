#!/usr/bin/env bash
# Regenerates the completion scripts from the clap definition.
# Run from the repository root: bash completions/generate.sh
set -euo pipefail
cargo build --quiet
bin=target/debug/ect-run
"$bin" --completions bash > completions/ect-run.bash
"$bin" --completions zsh > completions/_ect-run
"$bin" --completions fish > completions/ect-run.fish
"$bin" --completions powershell > completions/_ect-run.ps1
"$bin" --completions elvish > completions/ect-run.elv
