#!/usr/bin/env bash
# Builds the krew release archive of `kubectl doris` for the platform this
# runs on: a tar.gz holding the binary named kubectl-doris (and LICENSE,
# when the repository has one), named as deploy/krew/doris.yaml's uri for
# the platform names it. Prints the archive's path, then its sha256.
#
#   deploy/krew/build-archive.sh [--binary FILE] [--out DIR] [--manifest FILE]
#                                [--gzip-level N]
#
#   --binary FILE    package FILE instead of building the release binary
#                    (cargo build --release --locked)
#   --out DIR        where the archive goes (default: target/krew)
#   --manifest FILE  also write the archive's sha256 into FILE, a copy of
#                    deploy/krew/doris.yaml, for this platform
#   --gzip-level N   gzip's level, 1 (fast) to 9 (small, the default)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
binary="" out="$ROOT/target/krew" manifest="" level=9
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --manifest) manifest="$2"; shift 2 ;;
    --gzip-level) level="$2"; shift 2 ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
# krew's platforms are Go's GOOS and GOARCH names.
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "no krew platform for $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "no krew platform for $(uname -m)" >&2; exit 1 ;;
esac

if [[ -z "$binary" ]]; then
  (cd "$ROOT" && cargo build --release --locked --bin doris-operator >&2)
  binary="${CARGO_TARGET_DIR:-$ROOT/target}/release/doris-operator"
fi
[[ -x "$binary" ]] || { echo "$binary is not an executable" >&2; exit 1; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/kubectl-doris"
chmod 0755 "$stage/kubectl-doris"
[[ -f "$ROOT/LICENSE" ]] && cp "$ROOT/LICENSE" "$stage/LICENSE"

name="kubectl-doris_v${version}_${os}_${arch}.tar.gz"
mkdir -p "$out"
archive="$(cd "$out" && pwd)/$name"
# Entries owned by root, whoever builds it (GNU tar and bsdtar spell it
# differently).
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  owner=(--owner=0 --group=0 --numeric-owner)
else
  owner=(--uid 0 --gid 0)
fi
(cd "$stage" && tar "${owner[@]}" -cf - *) | gzip -n "-$level" >"$archive"

if command -v sha256sum >/dev/null; then
  sha="$(sha256sum "$archive" | cut -d ' ' -f 1)"
else
  sha="$(shasum -a 256 "$archive" | cut -d ' ' -f 1)"
fi

if [[ -n "$manifest" ]]; then
  # The sha256 line after the uri that ends with this archive's name.
  updated="$(awk -v name="/$name" -v sha="$sha" '
    $1 == "uri:" { pending = (substr($2, length($2) - length(name) + 1) == name) }
    pending && $1 == "sha256:" { sub(/sha256:.*/, "sha256: \"" sha "\""); pending = 0; found = 1 }
    { print }
    END { if (!found) exit 3 }
  ' "$manifest")" || { echo "$manifest has no platform whose uri ends with $name" >&2; exit 1; }
  printf '%s\n' "$updated" >"$manifest"
fi

echo "$archive"
echo "$sha"
