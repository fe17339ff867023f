#!/usr/bin/env bash
# Checks the lock annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED,
# ...) with clang's -Wthread-safety, which the GCC build cannot: every
# non-generated C++ source of the build is compiled for syntax only, with
# thread-safety warnings as errors. Prints the findings and exits 1 on any.
#
# Usage: thread_safety.sh BUILD_DIR   (a build configured with
# CMAKE_EXPORT_COMPILE_COMMANDS, as the project's is)
set -euo pipefail
build=${1:?usage: thread_safety.sh BUILD_DIR}
command -v clang++ >/dev/null || { echo "thread_safety: clang++ is missing (scripts/setup.sh installs it)"; exit 1; }
python3 - "$build/compile_commands.json" <<'PY' >"$build/thread-safety.cmds"
import json, shlex, sys
for entry in json.load(open(sys.argv[1])):
    src = entry["file"]
    if not src.endswith(".cc") or "/build" in src:
        continue  # generated protobuf code and CUDA sources are not ours to check here
    args = shlex.split(entry["command"])
    keep = ["clang++", "-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety-analysis",
            "-Wno-unknown-warning-option"]
    drop_next = keep_next = False
    for a in args[1:]:
        if drop_next or keep_next:
            if keep_next:
                keep.append(a)
            drop_next = keep_next = False
        elif a in ("-o", "-MF", "-MT", "-c"):
            drop_next = True
        elif a == "-isystem":
            keep.append(a)
            keep_next = True
        elif a.startswith(("-I", "-D", "-std=", "-isystem", "-f", "-pthread")):
            keep.append(a)
    keep += ["-c", src]
    print("cd %s && %s" % (shlex.quote(entry["directory"]), " ".join(shlex.quote(k) for k in keep)))
PY
count=$(wc -l <"$build/thread-safety.cmds")
if ! xargs -d '\n' -P "$(nproc)" -I{} bash -c '{}' <"$build/thread-safety.cmds" >"$build/thread-safety.log" 2>&1; then
  grep -E "error|warning" "$build/thread-safety.log" | head -50
  echo "thread_safety: lock annotations violated (full log: $build/thread-safety.log)"
  exit 1
fi
echo "thread_safety: $count sources checked, no finding"
