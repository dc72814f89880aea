#!/usr/bin/env bash
# Builds the user guide (the mdBook in docs/) into docs/book/ with a pinned
# mdbook, and fails on any warning or error mdbook reports (a page SUMMARY.md
# names that does not exist, a broken {{#include}}, …). The links between
# pages are checked by `cargo test --test book`.
#
# mdbook is installed on first use with `cargo install --locked` into the
# tools cache, outside the clone: ${DORIS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-~/.cache}/doris-operator/tools}.
set -euo pipefail
cd "$(dirname "$0")"

MDBOOK_VERSION=0.5.4
tools=${DORIS_OPERATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/doris-operator/tools}
prefix="$tools/mdbook-$MDBOOK_VERSION"
mdbook="$prefix/bin/mdbook"
if [[ ! -x "$mdbook" ]]; then
  echo "installing mdbook $MDBOOK_VERSION into $prefix" >&2
  cargo install --locked --quiet "mdbook@$MDBOOK_VERSION" --root "$prefix"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
RUST_LOG=${RUST_LOG:-info} "$mdbook" build 2>&1 | tee "$log" || status=$?
if [[ $status -ne 0 ]]; then
  echo "mdbook build failed (exit $status)" >&2
  exit "$status"
fi
if grep -E '\b(WARN|ERROR)\b' "$log" >/dev/null; then
  echo "mdbook reported warnings or errors (above): the book must build cleanly" >&2
  exit 1
fi
echo "the book is in docs/book/"
