#!/usr/bin/env bash
# How far quantfleet's calibration is from llama.cpp's under every CPU code
# path this host can run: the oracle's ggml CPU backend variant
# (QUANTFLEET_ORACLE_CPU) crossed with the kernel OpenBLAS uses for our
# forward pass (OPENBLAS_CORETYPE). Runs the imatrix and forward-pass
# conformance tests once per pair and prints, per case, the largest
# difference seen under each oracle variant and over all pairs: the table in
# tests/conformance/README.md, from which the tests' tolerances are set.
# Not part of the suite (about two minutes per pair on two cores).
#
# Usage: variant_spread.sh [BUILD_DIR]   (default: build; the oracle must be
# fetched, e.g. by one ctest run). ORACLE_VARIANTS and BLAS_CORES override
# the lists (space-separated); pairs this CPU cannot run are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
oracle_dir=$build/oracle
variants=${ORACLE_VARIANTS:-haswell alderlake skylakex icelake zen4}
cores=${BLAS_CORES:-Haswell SkylakeX Zen}
out=$build/variant-spread
mkdir -p "$out"
: >"$out/spread.tsv"

# The CPU's flags decide which OpenBLAS kernels may run (OpenBLAS would
# crash on instructions the CPU lacks rather than refuse).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
blas_runs() {
  case $1 in
    SkylakeX|Cooperlake|SapphireRapids) [[ $flags == *avx512f* ]] ;;
    *) [[ $flags == *avx2* ]] ;;
  esac
}

for variant in $variants; do
  # The oracle's tools say at start-up whether the variant loads here.
  said=$(QUANTFLEET_ORACLE_CPU=$variant "$oracle_dir/oracle-logits" 2>&1 || true)
  if [[ $said != *"ggml CPU backend $variant"* ]]; then
    echo "variant_spread: skipping oracle variant $variant (not loadable on this CPU)"
    continue
  fi
  for core in $cores; do
    if ! blas_runs "$core"; then
      echo "variant_spread: skipping OpenBLAS $core (not runnable on this CPU)"
      continue
    fi
    echo "variant_spread: oracle $variant, OpenBLAS $core"
    for test in imatrix_conformance_test forward_conformance_test; do
      QUANTFLEET_ORACLE_CPU=$variant OPENBLAS_CORETYPE=$core "$build/bin/$test" >"$out/$test-$variant-$core.log" 2>&1 || true
      # "[ RUN ] Suite/Name" then "spread: oracle V | ours B | worst W | ..."
      awk -v test="${test%_test}" -v variant="$variant" -v core="$core" '
        /^\[ RUN      \]/ { name = $4; sub(/.*\//, "", name) }
        /^spread:/ {
          split($0, f, " [|] ")
          worst = f[3]; sub(/worst /, "", worst)
          ppl = (test == "imatrix_conformance") ? f[5] : "perplexity -"
          sub(/perplexity /, "", ppl)
          printf "%s\t%s\t%s\t%s\t%s\t%s\n", test, name, variant, core, worst, ppl
        }' "$out/$test-$variant-$core.log" >>"$out/spread.tsv"
    done
  done
done

# The table: per case, the largest value under each oracle variant (over the
# OpenBLAS kernels), and over every pair.
python3 - "$out/spread.tsv" <<'PY'
import collections, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
variants = list(dict.fromkeys(r[2] for r in rows))
cores = list(dict.fromkeys(r[3] for r in rows))
worst = collections.defaultdict(float)
ppl = collections.defaultdict(float)
cases = list(dict.fromkeys((r[0], r[1]) for r in rows))
for test, name, variant, core, w, p in rows:
    worst[(test, name, variant)] = max(worst[(test, name, variant)], float(w))
    if p != "-":
        ppl[(test, name, variant)] = max(ppl[(test, name, variant)], float(p))
print("OpenBLAS kernels: " + ", ".join(cores))
print()
print("| test | case | " + " | ".join(variants) + " | all |")
print("|---|---|" + "---:|" * (len(variants) + 1))
for test, name in cases:
    def cell(v):
        w = worst[(test, name, v)]
        return f"{w:.2g}" + (f" / {ppl[(test, name, v)]:.2g}" if test == "imatrix_conformance" else "")
    all_w = max(worst[(test, name, v)] for v in variants)
    all_cell = f"{all_w:.2g}"
    if test == "imatrix_conformance":
        all_cell += f" / {max(ppl[(test, name, v)] for v in variants):.2g}"
    print(f"| {test.replace('_conformance', '')} | {name} | " + " | ".join(cell(v) for v in variants) + f" | {all_cell} |")
PY
