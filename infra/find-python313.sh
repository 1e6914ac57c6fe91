#!/usr/bin/env bash
# Print the path of a real python3.13 interpreter for `sam build` (runtime python3.13), or fail
# clearly. pyenv's shims are skipped: a shim answers to python3.13 even when the active version
# is another one, and sam's binary validation then fails with a confusing message.
set -euo pipefail
is313() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; }
root="${PYENV_ROOT:-$HOME/.pyenv}"
for candidate in "$root"/versions/3.13*/bin/python3.13; do
  if [ -x "$candidate" ] && is313 "$candidate"; then echo "$candidate"; exit 0; fi
done
IFS=: read -r -a dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  case "$dir" in */shims) continue ;; esac
  if [ -x "$dir/python3.13" ] && is313 "$dir/python3.13"; then echo "$dir/python3.13"; exit 0; fi
done
echo "error: sam build needs a python3.13 interpreter (the functions' runtime) and none was found." >&2
echo "       Install one (e.g. 'pyenv install 3.13') or put python3.13 on PATH, then run 'make build' again." >&2
exit 1
