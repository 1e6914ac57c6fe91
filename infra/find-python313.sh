#!/usr/bin/env bash
# Print the path of a python3.13 interpreter for `sam build` (runtime python3.13), or fail clearly.
# Looks on PATH first, then among the CPython versions that pyenv installed.
set -euo pipefail
if command -v python3.13 >/dev/null 2>&1; then
  command -v python3.13
  exit 0
fi
root="${PYENV_ROOT:-$HOME/.pyenv}"
for candidate in "$root"/versions/3.13*/bin/python3.13; do
  if [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done
echo "error: sam build needs a python3.13 interpreter (the functions' runtime) and none was found." >&2
echo "       Install one (e.g. 'pyenv install 3.13') or put python3.13 on PATH, then run 'make build' again." >&2
exit 1
