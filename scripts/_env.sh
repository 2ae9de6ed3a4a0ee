# Shared set-up for scripts/demo and scripts/test: a project virtualenv with creditfactory installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CREDITFACTORY_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {  # $1: extras, e.g. "" or "[dev]"
  local extras="${1:-}"
  if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "creditfactory needs Python 3.11 or newer (found $("$PY" --version 2>&1))" >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtualenv in $VENV" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  local stamp="$VENV/.installed${extras}"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "installing creditfactory${extras} and its dependencies" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT${extras}"
    touch "$stamp"
  fi
}
