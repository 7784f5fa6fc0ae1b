#!/usr/bin/env bash
# The five-minute tour of the provgate CLI on the bundled dataset (what `make demo` runs):
# init a home, ingest rows and files, verify the ledger, prove an entry, snapshot the data,
# pass the training gate, and print the verified lineage of the snapshot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PROVGATE_HOME="${PROVGATE_HOME:-$(cd "$here/.." && pwd)/.provgate-demo}"
rm -rf "$PROVGATE_HOME"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step provgate init
step provgate ingest "$here/data/reviews.csv" --source https://example.org/reviews \
  --license CC0-1.0 --method synthetic --geography EU
step provgate ingest "$here/data/docs" --source file://handbook --license CC-BY-4.0 \
  --method manual --json
step provgate digest "$here/data/reviews.csv" "$here/data/docs"
step provgate verify
step provgate log checkpoint
step provgate log prove 0 --json
step provgate log consistency 1 2 --json
step provgate keys list
printf '\n\033[1m$ provgate show 0 --json | head -40\033[0m\n'
provgate show 0 --json | head -40
printf '\n\033[1m$ provgate snapshot commit %s provgate://demo/main --json\033[0m\n' "$here/data"
snap="$(provgate snapshot commit "$here/data" provgate://demo/main -m "demo data v1" --json)"
echo "$snap"
commit="$(printf '%s' "$snap" | python3 -c 'import json, sys; print(json.load(sys.stdin)["commit"])')"
step provgate snapshot verify "provgate://demo/$commit"
printf '\n\033[1m$ provgate gate check --input provgate://demo/%s   # SOURCE.md was never ingested\033[0m\n' "$commit"
provgate gate check --input "provgate://demo/$commit" || echo "(exit $?: refused, as it should be)"
step provgate gate check --input "provgate://demo/$commit/docs" --input "provgate://demo/$commit/reviews.csv"
step provgate trace "provgate://demo/$commit"
step provgate verify --artifact "provgate://demo/$commit"
printf '\nThe demo ledger is in %s; verify it again with:\n  PROVGATE_HOME=%s .venv/bin/provgate verify\n' \
  "$PROVGATE_HOME" "$PROVGATE_HOME"
