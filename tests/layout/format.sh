#!/usr/bin/env bash
# The format rule, checked on every C++ and CUDA source git tracks: each
# follows .clang-format. Prints the files that do not (and how to fix
# them) and exits 1 if there is one.
#
# Usage: format.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"

format=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $format ]]; then
  echo "format: clang-format is not installed (scripts/setup.sh installs it)"
  exit 1
fi
bad=()
checked=0
while IFS= read -r file; do
  checked=$((checked + 1))
  "$format" --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(git ls-files '*.cc' '*.h' '*.cu')
if ((${#bad[@]} > 0)); then
  printf 'format: %s does not follow .clang-format\n' "${bad[@]}"
  echo "format: ${#bad[@]} of $checked files; fix with: $format -i FILE"
  exit 1
fi
echo "format: $checked files follow .clang-format ($("$format" --version | head -1))"
