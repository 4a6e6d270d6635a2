#!/usr/bin/env bash
# First-use setup: checks Python 3.11 and Java 17, creates .venv and installs the pinned
# stack (requirements-lock.txt) with uv; installs Debian's chromium for the browser tests
# (tests/ui) when running as root (CI), else says which apt command to run. Prints one clear
# line on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "error: $*" >&2; exit 1; }

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || fail "Python 3.11 not found: install it (e.g. pyenv install 3.11) or run 'make PYTHON=/path/to/python3.11'"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$JAVA" >/dev/null 2>&1 || fail "Java not found: install Java 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
java_major=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || fail "Java ${java_major:-?} found, Spark 4 needs Java 17 or newer: install openjdk-17 or set JAVA_HOME"

mkdir -p .local
log=.local/install.log
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $PY ..."
  "$PY" -m venv .venv || fail "could not create .venv (is the python3.11-venv package installed?)"
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.8 >"$log" 2>&1 \
    || fail "could not install uv into .venv; see $log"
fi
echo "installing the pinned stack into .venv (first time: about 1-2 minutes) ..."
if ! .venv/bin/uv pip sync --compile-bytecode --python .venv/bin/python requirements-lock.txt >>"$log" 2>&1; then
  tail -n 5 "$log" >&2
  fail "installing requirements-lock.txt failed; full log in $log"
fi
# The browser tests (tests/ui) drive Debian's chromium with Playwright: Playwright's own
# browser download is not used (blocked on many CI networks).
CHROMIUM=/usr/lib/chromium/chromium
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests (apt-get, about 30 s) ..."
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } >>"$log" 2>&1 \
      || fail "apt-get install chromium failed; full log in $log"
  else
    echo "note: the browser tests (tests/ui) need Debian's chromium: run 'sudo apt-get install -y chromium' (they are skipped until then)"
  fi
fi
touch .venv/.installed
echo "ready: .venv"
