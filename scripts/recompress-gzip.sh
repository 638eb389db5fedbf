#!/usr/bin/env bash
# Rewrites every precompressed .gz of the site with zopfli. cargo-leptos's
# --precompress writes its gzip copies at a fast setting (the WASM bundle's
# .gz came out 16% larger than zopfli's); browsers that do not take brotli
# get these bytes, so they are made once, at build time, as small as gzip
# can make them. Its .br copies are already brotli's best quality.
set -euo pipefail

site=${1:?usage: recompress-gzip.sh SITE_DIR}
find "$site" -type f -name '*.gz' -print0 | while IFS= read -r -d '' gz; do
  source=${gz%.gz}
  [ -f "$source" ] || continue
  # Five iterations: within 0.1% of zopfli's default fifteen, in half the time.
  zopfli --i5 -c "$source" > "$gz.tmp"
  mv "$gz.tmp" "$gz"
done
