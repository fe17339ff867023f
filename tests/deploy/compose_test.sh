#!/usr/bin/env bash
# The compose cluster, run for real: builds the images from
# deploy/docker/Dockerfile on a Debian 12 base made here with debootstrap,
# runs deploy/docker-compose.yml on the host's network (everything on
# 127.0.0.1) with mutual TLS from `quantfleet certs init`, and checks:
#   - a job submitted by this machine's `quantfleet` gives the bytes of
#     `quantfleet quantize`, though a worker container is killed mid-job and
#     the coordinator container restarted while the job is unfinished;
#   - the status page, rendered by headless Chromium from the published
#     metrics port, shows the job succeeded and both workers alive;
#   - both containers' HEALTHCHECKs (`quantfleet health`) report healthy;
#   - `docker-compose down` leaves the state volume and the artifact: a new
#     coordinator on the same volume still knows the job.
# Starts dockerd (no bridge, no iptables) when none runs, and stops what it
# started. Needs root, docker.io, docker-compose, debootstrap and chromium
# (scripts/setup.sh installs them). Built layers stay cached between runs
# (docker_lab.sh).
#   compose_test.sh [BIN_DIR]      (default: build/bin)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:-$src/build/bin}" && pwd)
# shellcheck source-path=SCRIPTDIR source=docker_lab.sh
source "$src/tests/deploy/docker_lab.sh"

lab_check_tools docker-compose chromium python3
for tool in quantfleet quantfleet-testmodel; do
  [[ -x $bin/$tool ]] || fail "$bin/$tool is missing: build the project first"
done

tmp=$(mktemp -d /tmp/qf-compose.XXXXXX)
compose_main=()
compose_rig2=()
cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)) && ((${#compose_main[@]} > 0)); then
    "${compose_main[@]}" logs --no-color --tail 40 >&2
    "${compose_rig2[@]}" logs --no-color --tail 20 >&2
  fi
  if ((${#compose_main[@]} > 0)); then
    "${compose_main[@]}" down -v --timeout 5 >/dev/null 2>&1
    "${compose_rig2[@]}" down -v --timeout 5 >/dev/null 2>&1
  fi
  lab_finish "$rc" "$tmp"
}
trap cleanup EXIT

lab_up "$src" "$tmp"
for target in coordinator worker; do
  user=$(docker image inspect -f '{{.Config.User}}' "quantfleet/$target:$QUANTFLEET_TAG")
  [[ $user == quantfleet ]] || fail "quantfleet/$target runs as '$user', not the quantfleet user"
  docker image inspect -f '{{json .Config.Healthcheck.Test}}' "quantfleet/$target:$QUANTFLEET_TAG" |
    grep -q 'quantfleet health' || fail "quantfleet/$target has no HEALTHCHECK asking quantfleet health"
done

# The lab: certificates and tokens, a model, free loopback ports.
mkdir -p "$tmp/deploy" "$tmp/models"
chmod 755 "$tmp"
chmod 777 "$tmp/models" # the containers' user writes the artifacts there
cp "$src/deploy/docker-compose.yml" "$src/tests/deploy/docker-compose.test.yml" "$tmp/deploy/"
read -r grpc_port coordinator_metrics rig1_metrics rig2_metrics < <(lab_free_ports 4)
"$bin/quantfleet" certs init "$tmp/deploy/secrets" --coordinator-host 127.0.0.1 --port "$grpc_port" \
  --worker rig1 --worker rig2 >/dev/null
chown -R 10001:10001 "$tmp/deploy/secrets"
"$bin/quantfleet-testmodel" --layers 4 --embd 1024 --ff 2816 --vocab 8192 --heads 8 --heads-kv 2 --type f16 \
  "$tmp/models/model.gguf" >/dev/null
"$bin/quantfleet" quantize "$tmp/models/model.gguf" "$tmp/reference.gguf" Q4_K_M 2 >/dev/null 2>&1
reference=$(sha256sum <"$tmp/reference.gguf" | cut -d' ' -f1)

export MODELS_DIR=$tmp/models
export COORDINATOR_LISTEN=127.0.0.1:$grpc_port COORDINATOR=127.0.0.1:$grpc_port
export COORDINATOR_METRICS_LISTEN=127.0.0.1:$coordinator_metrics
export QUANTFLEET_COORDINATOR=127.0.0.1:$grpc_port
export QUANTFLEET_TLS_CA=$tmp/deploy/secrets/ca.pem QUANTFLEET_TLS_CERT=$tmp/deploy/secrets/client.pem
export QUANTFLEET_TLS_KEY=$tmp/deploy/secrets/client.key QUANTFLEET_TOKEN_FILE=$tmp/deploy/secrets/client.token
files=(-f "$tmp/deploy/docker-compose.yml" -f "$tmp/deploy/docker-compose.test.yml")
compose_main=(env WORKER_NAME=rig1 "WORKER_METRICS_LISTEN=127.0.0.1:$rig1_metrics" docker-compose -p qftest "${files[@]}")
compose_rig2=(env WORKER_NAME=rig2 "WORKER_METRICS_LISTEN=127.0.0.1:$rig2_metrics" docker-compose -p qftest-rig2 "${files[@]}")
qf() { timeout 60 "$bin/quantfleet" "$@"; }
job_field() { # job_field JOB FIELD: one field of `quantfleet status --json`
  qf status --json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin).get('$2', ''))"
}
worker_alive() { qf workers --json | python3 -c "
import json, sys
workers = json.load(sys.stdin)
workers = workers.get('workers', workers) if isinstance(workers, dict) else workers
sys.exit(0 if any(w.get('info', {}).get('name') == '$1' and w.get('alive') for w in workers) else 1)"; }
coordinator_serves() { "${compose_main[@]}" exec -T coordinator quantfleet health --http "$COORDINATOR_METRICS_LISTEN"; }

say "starting the coordinator and worker rig1 (mutual TLS on 127.0.0.1:$grpc_port)"
"${compose_main[@]}" up -d --no-build coordinator worker >"$tmp/up.log" 2>&1 || fail "compose up: $(cat "$tmp/up.log")"
wait_for 60 "the coordinator answering /healthz in its container" coordinator_serves
wait_for 60 "worker rig1 registered" worker_alive rig1

job=$(qf submit "$tmp/models/model.gguf" "$tmp/models/out.gguf" Q4_K_M 2>"$tmp/submit.log" | tail -n 1)
[[ -n $job ]] || fail "submit printed no job id: $(cat "$tmp/submit.log")"
tasks=$(job_field "$job" tasksTotal)
say "job $job: $tasks tasks; killing rig1 once it has done some"
tasks_done() { (($(job_field "$job" tasksDone) >= $1)); }
wait_for 120 "rig1 finishing a first task" tasks_done 1
docker kill "$("${compose_main[@]}" ps -q worker)" >/dev/null
before=$(job_field "$job" tasksDone)
((before < tasks)) || fail "the job ended ($before of $tasks tasks) before the worker was killed; give it more tasks"
[[ $(job_field "$job" state) != JOB_SUCCEEDED ]] || fail "the job ended before the worker was killed"

say "rig1 killed after $before of $tasks tasks; restarting the coordinator container"
"${compose_main[@]}" restart --timeout 10 coordinator >/dev/null 2>&1
wait_for 60 "the restarted coordinator answering /healthz" coordinator_serves
after=$(job_field "$job" tasksDone)
((after >= before && after < tasks)) ||
  fail "after the restart the job has $after of $tasks tasks done (had $before): progress lost or made without workers"

say "starting rig2 (its own compose project, as on another rig) and bringing rig1 back"
"${compose_rig2[@]}" up -d --no-build worker >"$tmp/up2.log" 2>&1 || fail "compose up rig2: $(cat "$tmp/up2.log")"
"${compose_main[@]}" up -d --no-build worker >"$tmp/up3.log" 2>&1 || fail "compose up rig1: $(cat "$tmp/up3.log")"
timeout 300 "$bin/quantfleet" watch "$job" >"$tmp/watch.log" 2>&1 || fail "the job did not succeed: $(tail -5 "$tmp/watch.log")"
artifact=$(sha256sum <"$tmp/models/out.gguf" | cut -d' ' -f1)
[[ $artifact == "$reference" ]] || fail "the cluster's artifact ($artifact) differs from quantfleet quantize ($reference)"
say "job succeeded with the bytes of quantfleet quantize ($artifact)"

# The status page from the published port, as a browser shows it.
wait_for 30 "worker rig1 registered again" worker_alive rig1
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --user-data-dir="$tmp/chromium" --virtual-time-budget=8000 --dump-dom "http://$COORDINATOR_METRICS_LISTEN/" \
  >"$tmp/page.html" 2>/dev/null || fail "headless Chromium could not render the status page"
grep -q 'data-loaded="true"' "$tmp/page.html" || fail "the status page did not load /api/status"
grep -Eq "<tr class=\"job state-succeeded\" data-job=\"$job\">.*100\.0%" "$tmp/page.html" ||
  fail "the status page does not show job $job succeeded at 100%"
for name in rig1 rig2; do
  grep -Eq "data-worker=\"$name\">.*class=\"alive\">alive<" "$tmp/page.html" ||
    fail "the status page does not show worker $name alive"
done

# Docker's own view of the HEALTHCHECKs (the first probe runs one interval
# after a container starts).
healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$("$@" ps -q "$service")") == healthy ]]; }
for service in coordinator worker; do
  wait_for 90 "docker reporting $service healthy" healthy "${compose_main[@]}"
done
service=worker wait_for 90 "docker reporting rig2 healthy" healthy "${compose_rig2[@]}"
qf health --http "127.0.0.1:$rig2_metrics" >/dev/null || fail "rig2's /healthz does not answer on the host"

say "docker-compose down; the state volume and the artifact stay"
"${compose_rig2[@]}" down --timeout 5 >/dev/null 2>&1
"${compose_main[@]}" down --timeout 5 >/dev/null 2>&1
docker volume inspect qftest_quantfleet-state >/dev/null 2>&1 || fail "down removed the state volume"
[[ $(sha256sum <"$tmp/models/out.gguf" | cut -d' ' -f1) == "$reference" ]] || fail "down changed the artifact"
"${compose_main[@]}" up -d --no-build coordinator >"$tmp/up4.log" 2>&1 || fail "compose up again: $(cat "$tmp/up4.log")"
wait_for 60 "the coordinator on the kept volume answering" coordinator_serves
[[ $(job_field "$job" state) == JOB_SUCCEEDED ]] || fail "the coordinator on the kept volume lost job $job"

say "passed"
