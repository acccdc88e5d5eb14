#!/usr/bin/env bash
# Installs every Debian package Mayak needs to build, run and test.
# Idempotent: packages already present are left alone. Run as root on Debian 12.
#   scripts/install-deps.sh          build + run
#   scripts/install-deps.sh --test   also what the test suite and benchmarks need
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libuv1-dev              # event loop
  libhttp-parser-dev      # HTTP/1.1 request parsing
  libwslay-dev            # WebSocket framing (chat widget, operator console)
  libjson-c-dev           # JSON (exact integers, strict UTF-8)
  libcurl4-openssl-dev    # upstream HTTP client (multi socket API on libuv)
  libfyaml-dev            # YAML config with line/column marks
  libsqlite3-dev          # embedded store
  libpq-dev               # PostgreSQL store backend (libpq)
  libgcrypt20-dev         # Streebog (GOST R 34.11-2012), hashing
  libsodium-dev           # randomness, constant-time compare, Ed25519
  libutf8proc-dev         # Unicode normalisation
  libstemmer-dev          # Snowball stemming (ru/en) for knowledge-base search
  libcmark-gfm-dev libcmark-gfm-extensions-dev libgumbo-dev libpoppler-glib-dev  # kb ingestion: Markdown, HTML, PDF
  libhyperscan-dev        # injection guard pattern matching (block mode)
  libpcre2-dev            # guard pattern fallback where Hyperscan cannot run
  libhiredis-dev          # redis kv backend (shared rate limits, sessions)
  libjwt-dev              # OIDC/JWT bearer tokens
  liboath-dev             # TOTP second factor
  librabbitmq-dev         # RabbitMQ event bus backend (AMQP 0-9-1)
)

TEST_PACKAGES=(
  libcriterion-dev        # C unit tests
  clang llvm libclang-rt-14-dev   # libFuzzer, ASan/UBSan runtime
  python3 python3-pytest python3-requests python3-websocket
  haproxy                 # several nodes behind a real load balancer (test_cluster.py)
  prometheus              # promtool check metrics, a real scrape
  redis-server            # real Redis for the kv and limits tests
  postgresql              # real PostgreSQL for the store tests (started by the tests)
  rabbitmq-server         # real RabbitMQ for the bus tests (started by the tests)
  openssl                 # test keys for JWT (RS256/ES256)
  python3-hnswlib python3-faiss   # vector index peers (bench/vector)
  chromium                # browser tests (tests/e2e, playwright-core)
  wrk hyperfine curl procps psmisc
)

want=("${BUILD_PACKAGES[@]}")
if [ "${1:-}" = "--test" ]; then
  want+=("${TEST_PACKAGES[@]}")
  # The official openai npm SDK is a black-box client in the tests. Debian's
  # nodejs + npm unless a Node.js with npm is already installed (e.g. nodesource,
  # whose nodejs conflicts with Debian's npm).
  command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
  # The openai npm SDK drives Mayak as a real client does (tests/integration/node).
  # Found from the script's own place, so it works from any directory; (re)installed
  # from the lockfile when missing or not the pinned version.
  node_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/integration/node"
  if [ -f "$node_dir/package.json" ]; then
    (
      cd "$node_dir"
      want_ver=$(node -p 'require("./package.json").dependencies.openai')
      have_ver=$(node -p 'require("./node_modules/openai/package.json").version' 2>/dev/null || true)
      if [ "$want_ver" != "$have_ver" ]; then
        if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error
        else npm install --no-audit --no-fund --loglevel=error; fi
      fi
    )
  fi
fi

if [ "${1:-}" = "--test" ]; then
  # playwright-core drives Debian's chromium in the browser tests (tests/e2e); it
  # downloads no browser of its own. Installed from the lockfile when missing or stale.
  e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/e2e"
  if [ -f "$e2e_dir/package-lock.json" ]; then
    (
      cd "$e2e_dir"
      want_ver=$(node -p 'require("./package.json").dependencies["playwright-core"]')
      have_ver=$(node -p 'require("./node_modules/playwright-core/package.json").version' 2>/dev/null || true)
      if [ "$want_ver" != "$have_ver" ]; then
        npm ci --no-audit --no-fund --loglevel=error
      fi
    )
  fi
fi
