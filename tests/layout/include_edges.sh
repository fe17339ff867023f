#!/usr/bin/env bash
# The layout's rules, checked on every source file: which folder may include
# which. core/ is the engine everyone links and uses nothing of the project
# but itself (and no gRPC); proto/ is the wire; the coordinator, the worker
# and the client meet only through core/ and proto/. Unit tests beside the
# code may also use tests/tools/. Prints each include that crosses a rule
# and exits 1 if there is one.
#
# Usage: include_edges.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"

allowed() {  # allowed FOLDER: the project folders FOLDER's sources may include
  case $1 in
    core) echo "core" ;;
    proto) echo "core proto" ;;
    coordinator) echo "core proto coordinator" ;;
    worker) echo "core proto worker" ;;
    client) echo "core proto client" ;;
  esac
}

bad=0
checked=0
for folder in core proto coordinator worker client; do
  ok=" $(allowed "$folder") "
  while IFS= read -r file; do
    checked=$((checked + 1))
    test_file=0
    [[ $file == *_test.cc ]] && test_file=1
    while IFS= read -r line; do
      inc=${line#*\"}
      inc=${inc%%\"*}
      top=${inc%%/*}
      [[ $inc == */* ]] || continue
      case $top in core | proto | coordinator | worker | client | tests) ;; *) continue ;; esac
      if [[ $ok == *" $top "* ]] || { ((test_file)) && [[ $inc == tests/tools/* ]]; }; then continue; fi
      echo "include_edges: $file includes $inc ($folder/ may include only: $(allowed "$folder"))"
      bad=1
    done < <(grep -E '^#include "' "$file" || true)
    if [[ $folder == core ]] && grep -qE '^#include <grpc' "$file"; then
      echo "include_edges: $file includes gRPC (core/ is transport-free)"
      bad=1
    fi
  done < <(find "$folder" -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' \) | sort)
done
echo "include_edges: $checked files checked"
exit "$bad"
