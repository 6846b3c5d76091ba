#!/usr/bin/env bash
# A new user's first hour, replayed: each step as a user types it, and what came
# of it (exit code and the first lines). Run from a checkout after `make venv`
# (the batch steps need `pip install -e '.[ray]'`):
#
#     bash benchmarks/first_hour.sh
set -u
cd "$(dirname "$0")/.."
FACEUP="$PWD/.venv/bin/faceup"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp src/faceup/samples/* "$WORK/"
cd "$WORK"

step() {  # step "what a user wants" command...
  local what=$1; shift
  printf '\n== %s\n$ %s\n' "$what" "$*"
  "$@" >"$WORK/.out" 2>&1
  local code=$?
  head -n 8 "$WORK/.out" | sed 's/^/  /'
  printf '  (exit %s)\n' "$code"
}

step "which version is this" "$FACEUP" --version
step "help for the batch job names its extra" sh -c "COLUMNS=80 '$FACEUP' batch --help | head -4"
step "fix the samples; which were left as they were, and why" "$FACEUP" fix . -o upright
step "one picture beside itself" "$FACEUP" fix astronaut-turned-90.jpg
step "the output is not taken as a new input" "$FACEUP" predict --json .
step "fixing an output again is refused, not NAME.upright.upright" "$FACEUP" fix astronaut-turned-90.upright.jpg
step "standard input to standard output" sh -c "cat rocket-turned-90.jpg | '$FACEUP' fix - > piped.jpg && file piped.jpg"
step "only the orientation tag, pixels untouched" "$FACEUP" fix --tag-only cameraman-upside-down.png -o tagged.png
step "explain as JSON writes no picture" sh -c "'$FACEUP' explain --json astronaut-turned-90.jpg | head -c 160; ls *.why.png 2>/dev/null | wc -l"
step "a batch job" "$FACEUP" batch . -o batch-out
step "the batch job without the ray extra" env PYTHONPATH="$WORK/.noray" sh -c "mkdir -p .noray/ray && echo \"raise ImportError('no', name='ray')\" > .noray/ray/__init__.py && '$FACEUP' batch . -o nope"
