# Shared by scripts/demo and scripts/test: a virtualenv with the project installed.
# Creates .venv on first use and reinstalls only when pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)." >&2
  return 1
}

ensure_venv() {
  local extras="${1:-}"
  if [ ! -x .venv/bin/python ]; then
    local python
    python="$(find_python)"
    echo "Creating .venv with $python ..."
    "$python" -m venv .venv || {
      echo "error: could not create .venv (on Debian/Ubuntu: apt install python3-venv)." >&2
      return 1
    }
  fi
  local stamp=".venv/.installed${extras:+-$extras}"
  local digest
  digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ] || [ ! -x .venv/bin/idp ]; then
    echo "Installing compte-usager into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
    echo "$digest" > "$stamp"
  fi
}
