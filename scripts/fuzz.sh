#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a short time each.
# Usage: scripts/fuzz.sh [DURATION]   (default 5s)
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
found=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for fn in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=$((found + 1))
    echo "fuzz ./$dir $fn for $t"
    go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$t" "./$dir"
  done
done < <(git ls-files '*_test.go')
echo "fuzz: $found targets run"
[ "$found" -gt 0 ]
