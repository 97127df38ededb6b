#!/usr/bin/env bash
# Installs what building and testing Streamboard needs, skipping whatever is already there.
# Idempotent; safe to run before every `make run` / `make test`.
#   scripts/setup.sh            tools to build and run
#   scripts/setup.sh --test     also Chromium for the end-to-end tests and PostgreSQL for the
#                               storage tests (Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
WITH_BROWSER=0
[ "${1:-}" = "--test" ] && WITH_BROWSER=1

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: npm not found; install Node.js 20+ first" >&2; exit 1; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown target: present"
else
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if cargo leptos --version 2>/dev/null | grep -q " ${CARGO_LEPTOS_VERSION}\$"; then
  say "cargo-leptos ${CARGO_LEPTOS_VERSION}: present"
else
  say "building cargo-leptos ${CARGO_LEPTOS_VERSION} from source (about 12 minutes on 2 cores)"
  cargo install cargo-leptos --version "${CARGO_LEPTOS_VERSION}" --locked --features no_downloads
fi

if wasm-bindgen --version 2>/dev/null | grep -q " ${WASM_BINDGEN_VERSION}\$"; then
  say "wasm-bindgen-cli ${WASM_BINDGEN_VERSION}: present"
else
  say "building wasm-bindgen-cli ${WASM_BINDGEN_VERSION} (about 2 minutes)"
  # Not --locked: one of its pinned dependencies is not served by the registry.
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
    cargo install wasm-bindgen-cli --version "${WASM_BINDGEN_VERSION}" --force
fi

if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  say "npm packages (tailwindcss, wasm-opt, playwright, kinesis-local): present"
else
  say "installing npm packages with npm ci"
  npm ci --no-audit --no-fund
fi

if [ "$WITH_BROWSER" = 1 ]; then
  if [ -x /usr/bin/chromium ]; then
    say "chromium: present"
  else
    say "installing Debian's chromium for the end-to-end tests"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
  # The storage tests start their own PostgreSQL server from Debian's package.
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "postgresql: present"
  else
    say "installing Debian's postgresql for the storage tests"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  fi
fi
say "done"
