#!/usr/bin/env bash
# Benchmark: `quantfleet imatrix` against llama.cpp's llama-imatrix on the
# same generated model (Llama-shaped, with llama.cpp's SentencePiece
# vocabulary), the same calibration text (llama.cpp's docs) and the same
# thread count, in one run. Prints calibration tokens per second of both,
# the ratio, peak resident memory, and the worst relative difference of the
# two importance matrices; then the same calibration on a local cluster of
# 1, 2 and 4 workers (threads split between them), and on 2 workers that
# may each hold 60% of the model (--memory), so that they form a pipeline
# of two stages, checking that each file is the bytes of the one-machine
# run. Not part of ctest; run after
# scripts/setup.sh:
#
#   bench/imatrix_bench.sh [--layers N] [--embd N] [--chunks N] [--ctx N] [--threads N] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."

layers=4
embd=1024
chunks=8
ctx=512
threads=$(nproc)
markdown=0
# shellcheck source-path=SCRIPTDIR/.. source=bench/options.sh
. bench/options.sh
bench_options layers embd chunks ctx threads -- "$@"

oracle=build/oracle
tests/conformance/fetch_oracle.sh "$oracle" >/dev/null
work=build/bench
mkdir -p "$work"
model="$work/imatrix-${layers}l-${embd}.gguf"
if [[ ! -f "$model" ]]; then
  echo "bench: generating $model ($layers layers, width $embd, F16, llama-spm vocabulary)" >&2
  build/bin/quantfleet-testmodel --layers "$layers" --embd "$embd" --ff $((embd * 11 / 4)) --heads $((embd / 64)) \
    --heads-kv $((embd / 256 > 0 ? embd / 256 : 1)) --type f16 --plain --seed 7 \
    --vocab-from "$oracle/llama.cpp/models/ggml-vocab-llama-spm.gguf" "$model"
fi
text="$work/imatrix-corpus.txt"
cat "$oracle"/llama.cpp/docs/*.md "$oracle"/llama.cpp/docs/*/*.md > "$text"
cat "$model" >/dev/null  # both tools start from a warm page cache

measure() {  # runs a command; prints "seconds max_rss_kb"
  /usr/bin/time -o "$work/time.txt" -f "%e %M" "$@" >"$work/stdout.txt" 2>"$work/stderr.txt" || {
    echo "bench: failed: $*" >&2
    tail -n 5 "$work/stderr.txt" >&2
    exit 1
  }
  cat "$work/time.txt"
}

tokens=$((chunks * ctx))
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
if (( markdown )); then
  echo "| model | mode | tokens | llama-imatrix tok/s | quantfleet tok/s | speed ratio | peak RSS llama-imatrix | peak RSS quantfleet | worst rel. diff |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
else
  echo "model: $model, $chunks chunks of $ctx tokens, $threads threads, $cpu"
fi
# With the perplexity both compute every logit; with --no-ppl llama-imatrix
# still does, quantfleet skips the output projection nobody reads.
for mode in perplexity --no-ppl; do
  extra=()
  [[ $mode == --no-ppl ]] && extra=(--no-ppl)
  read -r t_ref rss_ref < <(measure "$oracle/llama-imatrix" -m "$model" -f "$text" -o "$work/imatrix-ref.gguf" \
    -c "$ctx" --chunks "$chunks" -b "$ctx" -ub "$ctx" -fa off -t "$threads" "${extra[@]}")
  read -r t_ours rss_ours < <(measure build/bin/quantfleet imatrix -m "$model" -f "$text" -o "$work/imatrix-ours.gguf" \
    -c "$ctx" --chunks "$chunks" -t "$threads" "${extra[@]}")
  worst=$(python3 - "$work/imatrix-ref.gguf" "$work/imatrix-ours.gguf" <<'PY'
import struct, sys
def tensors(path):
    # Minimal GGUF v3 reader: metadata is skipped, F32 tensors are returned.
    data = open(path, 'rb').read()
    off = 8
    n_t, n_kv = struct.unpack_from('<qq', data, off); off += 16
    def string(o):
        n, = struct.unpack_from('<Q', data, o); return data[o + 8:o + 8 + n].decode(), o + 8 + n
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def skip(t, o):
        if t == 8: return string(o)[1]
        if t == 9:
            et, n = struct.unpack_from('<IQ', data, o); o += 12
            for _ in range(n): o = skip(et, o)
            return o
        return o + sizes[t]
    for _ in range(n_kv):
        _, off = string(off); t, = struct.unpack_from('<I', data, off); off = skip(t, off + 4)
    infos = []
    for _ in range(n_t):
        name, off = string(off); nd, = struct.unpack_from('<I', data, off); off += 4
        ne = struct.unpack_from('<%dq' % nd, data, off); off += 8 * nd
        _, o = struct.unpack_from('<IQ', data, off); off += 12
        n = 1
        for d in ne: n *= d
        infos.append((name, o, n))
    base = (off + 31) // 32 * 32
    return {name: struct.unpack_from('<%df' % n, data, base + o) for name, o, n in infos}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
worst = max(abs(x - y) / max(abs(x), abs(y), 1e-30) for k in a for x, y in zip(a[k], b[k]))
print('%.2g' % worst)
PY
)
  tps_ref=$(awk -v n="$tokens" -v t="$t_ref" 'BEGIN { printf "%.0f", n / t }')
  tps_ours=$(awk -v n="$tokens" -v t="$t_ours" 'BEGIN { printf "%.0f", n / t }')
  ratio=$(awk -v a="$t_ref" -v b="$t_ours" 'BEGIN { printf "%.2f", a / b }')
  if (( markdown )); then
    echo "| ${layers} layers x ${embd}, F16 | $mode | $tokens | $tps_ref | $tps_ours | $ratio | $((rss_ref / 1024)) MiB | $((rss_ours / 1024)) MiB | $worst |"
  else
    echo "[$mode] llama-imatrix: ${t_ref} s (${tps_ref} tokens/s, $((rss_ref / 1024)) MiB); quantfleet: ${t_ours} s (${tps_ours} tokens/s, $((rss_ours / 1024)) MiB); speed ratio $ratio; worst relative difference $worst"
  fi
done

# The cluster: a coordinator and N workers reading the model from the bench
# folder (--data-root), against `quantfleet imatrix` here with perplexity.
read -r t_local _ < <(measure build/bin/quantfleet imatrix -m "$(pwd)/$model" -f "$(pwd)/$text" \
  -o "$(pwd)/$work/imatrix-local.gguf" -c "$ctx" --chunks "$chunks" -t "$threads")
if (( markdown )); then
  echo
  echo "| run | seconds | tokens/s | same bytes as one machine |"
  echo "|---|---:|---:|---|"
  echo "| quantfleet imatrix, one process | $t_local | $(awk -v n="$tokens" -v t="$t_local" 'BEGIN { printf "%.0f", n / t }') | - |"
else
  echo "one machine: ${t_local} s"
fi
# Start timing only once the coordinator listens and every worker has
# registered: a worker that connects too early waits out gRPC's reconnect
# backoff, which once doubled a row's time.
wait_for_port() {
  for _ in $(seq 200); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
wait_for_workers() {
  for _ in $(seq 200); do
    alive=$(build/bin/quantfleet workers --coordinator "127.0.0.1:$1" --json 2>/dev/null | grep -c '"alive": true' || true)
    (( alive >= $2 )) && return 0
    sleep 0.05
  done
  return 1
}

model_bytes=$(stat -c %s "$model")
for run in 1 2 4 2-pipeline; do
  n=${run%%-*}
  memory=()
  label="$n worker(s)"
  if [[ $run == *pipeline ]]; then
    memory=(--memory $(( model_bytes * 6 / 10 )))
    label="pipeline of $n workers, each holding 60% of the model,"
  fi
  per=$(( threads / n )); (( per >= 1 )) || per=1
  state=$(mktemp -d)
  port=$(( 20000 + RANDOM % 20000 ))
  pids=()
  build/bin/quantfleet-coordinator --listen "127.0.0.1:$port" --state-dir "$state" --allow-root "$(pwd)/$work" \
    --drain-seconds 0 2>"$state/coordinator.log" &
  pids+=($!)
  wait_for_port "$port" || { echo "bench: the coordinator did not start" >&2; exit 1; }
  for i in $(seq "$n"); do
    build/bin/quantfleet-worker --coordinator "127.0.0.1:$port" --name "w$i" --threads "$per" \
      --data-root "$(pwd)/$work" "${memory[@]}" 2>"$state/worker-$i.log" &
    pids+=($!)
  done
  wait_for_workers "$port" "$n" || { echo "bench: the workers did not register" >&2; exit 1; }
  read -r t_n _ < <(measure build/bin/quantfleet imatrix --coordinator "127.0.0.1:$port" -m "$(pwd)/$model" \
    -f "$(pwd)/$text" -o "$(pwd)/$work/imatrix-cluster.gguf" -c "$ctx" --chunks "$chunks")
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$state"
  same=no
  cmp -s "$work/imatrix-local.gguf" "$work/imatrix-cluster.gguf" && same=yes
  tps=$(awk -v n="$tokens" -v t="$t_n" 'BEGIN { printf "%.0f", n / t }')
  if (( markdown )); then
    echo "| cluster, $label x $per thread(s) | $t_n | $tps | $same |"
  else
    echo "cluster, $label x $per thread(s): ${t_n} s ($tps tokens/s), same bytes: $same"
  fi
done
