# Shared steps of the README's two commands (.ci/serve and .ci/test). Every step is idempotent:
# it installs only what is missing, at pinned versions, from the package registries and rustup.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\n==> %s\n' "$*" >&2; }

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# The machine-wide installs (rustup, cargo install, apt, npm) take turns. The README's two
# commands may run at once on a fresh machine, and two rustup downloads of one component fail
# rather than wait (seen: "could not rename 'downloaded' file"). Each step checks what is
# missing inside the lock, so the one that waited finds the other's work done.
setup_lock() { exec 9>"${TMPDIR:-/tmp}/bitabiz-setup.lock"; flock 9; }
setup_unlock() { flock -u 9; exec 9>&-; }

need_rust_tools() {
  setup_lock
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local want
  want="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $want\$"; then
    say "installing wasm-bindgen-cli $want"
    # Without --locked: with it, one of the CLI's locked dependencies is not in the registry.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
  setup_unlock
}

need_apt() {
  setup_lock
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  setup_unlock
}

# end2end/node_modules: Playwright (no browser download: Debian's chromium is used) and
# binaryen's wasm-opt (Debian's older binaryen produces wasm that breaks hydration).
need_node_modules() {
  if ! command -v npm >/dev/null; then need_apt nodejs npm; fi
  setup_lock
  if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing end2end npm packages"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
  setup_unlock
}

# Builds the browser bundle into target/site/pkg and the server binary.
# $1 = dev (tests) | serve (quick start) | release (production)
build_site() {
  local profile="$1" wasm_profile wasm_dir
  if [ "$profile" = dev ]; then
    wasm_profile=dev; wasm_dir=debug
  else
    wasm_profile=wasm-release; wasm_dir=wasm-release
  fi
  say "building the browser bundle ($wasm_profile)"
  cargo build -p app --lib --target wasm32-unknown-unknown --features hydrate --profile "$wasm_profile"
  # wasm-bindgen and wasm-opt take half a minute: skip them when the bundle already comes from
  # this very wasm file and profile.
  local input="target/wasm32-unknown-unknown/$wasm_dir/app.wasm" stamp="target/site/pkg/.built"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wasm_profile" ] && [ "$stamp" -nt "$input" ]; then
    say "browser bundle is up to date"
  else
    mkdir -p target/site/pkg
    rm -f "$stamp"
    wasm-bindgen --target web --no-typescript --out-dir target/site/pkg --out-name bitabiz "$input"
    if [ "$profile" != dev ]; then
      end2end/node_modules/.bin/wasm-opt -Oz target/site/pkg/bitabiz_bg.wasm -o target/site/pkg/bitabiz_bg.wasm
    fi
    echo "$wasm_profile" > "$stamp"
  fi
  say "building the server"
  cargo build -p server --bin bitabiz --profile "$profile"
}
