#!/usr/bin/env bash
# The systemd units, run for real: a container booted by systemd (PID 1)
# with the project's binaries and deploy/systemd's units installed as
# shipped, their env files filled in for 127.0.0.1 with mutual TLS, and checks
# that under the units' hardening
#   - both services start as the quantfleet user and stay up;
#   - a quantization job gives the bytes of `quantfleet quantize`, written
#     into the models folder (ReadWritePaths) with the job store in
#     StateDirectory;
#   - a calibration job streams the model into the worker's CacheDirectory;
#   - a killed worker is restarted by systemd (Restart=on-failure), and a
#     stopped coordinator drains and exits cleanly.
# NVML is not exercised: no GPU here (check_deploy.py checks that the worker
# unit keeps /dev/nvidia* visible). Needs what compose_test.sh needs.
#   systemd_test.sh [BIN_DIR]      (default: build/bin)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:-$src/build/bin}" && pwd)
# shellcheck source-path=SCRIPTDIR source=docker_lab.sh
source "$src/tests/deploy/docker_lab.sh"

lab_check_tools python3
[[ -x $bin/quantfleet ]] || fail "$bin/quantfleet is missing: build the project first"

tmp=$(mktemp -d /tmp/qf-systemd.XXXXXX)
machine=qf-systemd-test-$$
cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)); then
    docker exec "$machine" journalctl --no-pager -n 60 -u quantfleet-coordinator -u quantfleet-worker >&2
  fi
  docker rm -f "$machine" >/dev/null 2>&1
  lab_finish "$rc" "$tmp"
}
trap cleanup EXIT

lab_up "$src" "$tmp"

say "building the systemd machine image"
mkdir -p "$tmp/context"
cp "$src"/deploy/systemd/* "$src/tests/deploy/systemd/Dockerfile" "$tmp/context/"
docker build --network host --force-rm --build-arg "TAG=$QUANTFLEET_TAG" -t "quantfleet/systemd-machine:$QUANTFLEET_TAG" \
  "$tmp/context" >"$tmp/build-machine.log" 2>&1 || fail "the machine image: $(tail -20 "$tmp/build-machine.log")"

# systemd as PID 1 needs mount namespaces (for the units' hardening too) and
# the host's cgroups; all of the machine's traffic stays on 127.0.0.1.
say "booting it"
docker run -d --name "$machine" --network host --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
  "quantfleet/systemd-machine:$QUANTFLEET_TAG" >/dev/null
on() { docker exec "$machine" "$@"; }
booted() { [[ $(on systemctl is-system-running) =~ ^(running|degraded)$ ]]; }
wait_for 60 "systemd booting in the container" booted

read -r grpc_port coordinator_metrics worker_metrics < <(lab_free_ports 3)

# The env files as shipped, pointed at loopback; the worker streams models
# into its cache instead of reading a --data-root.
on sh -c "quantfleet certs init /etc/quantfleet/lab --coordinator-host 127.0.0.1 --port $grpc_port --worker rig1 >/dev/null \
  && mv /etc/quantfleet/lab/* /etc/quantfleet/ && rmdir /etc/quantfleet/lab \
  && chgrp quantfleet /etc/quantfleet/*.key /etc/quantfleet/*.token \
  && chmod 640 /etc/quantfleet/*.key /etc/quantfleet/*.token \
  && sed -i -e 's|^QUANTFLEET_LISTEN=.*|QUANTFLEET_LISTEN=127.0.0.1:$grpc_port|' \
            -e 's|^QUANTFLEET_METRICS_LISTEN=.*|QUANTFLEET_METRICS_LISTEN=127.0.0.1:$coordinator_metrics|' \
            /etc/quantfleet/coordinator.env \
  && sed -i -e 's|^QUANTFLEET_COORDINATOR=.*|QUANTFLEET_COORDINATOR=127.0.0.1:$grpc_port|' \
            -e 's|^QUANTFLEET_METRICS_LISTEN=.*|QUANTFLEET_METRICS_LISTEN=127.0.0.1:$worker_metrics|' \
            -e '/^QUANTFLEET_DATA_ROOT=/d' /etc/quantfleet/worker.env"

# The trained model and its calibration text (../shared beside the checkout).
trained=$src/../shared/models/pystdlib-tiny
[[ -f $trained/model-f16.gguf ]] || fail "$trained/model-f16.gguf is missing (../shared beside the checkout)"
"$bin/quantfleet" quantize "$trained/model-f16.gguf" "$tmp/reference.gguf" Q4_K_M 2 >/dev/null 2>&1
reference=$(sha256sum <"$tmp/reference.gguf" | cut -d' ' -f1)
docker cp "$trained/model-f16.gguf" "$machine:/srv/models/model.gguf"
docker cp "$trained/calib.txt" "$machine:/srv/models/calibration.txt"
on chown -R quantfleet:quantfleet /srv/models

say "starting the units"
on systemctl enable --now quantfleet-coordinator quantfleet-worker >/dev/null 2>&1 || true
for unit in quantfleet-coordinator quantfleet-worker; do
  wait_for 30 "$unit active" on systemctl is-active "$unit"
  [[ $(on stat -c %U "/proc/$(on systemctl show -p MainPID --value "$unit")") == quantfleet ]] ||
    fail "$unit does not run as the quantfleet user"
done
wait_for 30 "the coordinator's /healthz" on quantfleet health --http "127.0.0.1:$coordinator_metrics"
wait_for 30 "the worker's /healthz" on quantfleet health --http "127.0.0.1:$worker_metrics"

client=(env QUANTFLEET_COORDINATOR="127.0.0.1:$grpc_port" QUANTFLEET_TLS_CA=/etc/quantfleet/ca.pem
  QUANTFLEET_TLS_CERT=/etc/quantfleet/client.pem QUANTFLEET_TLS_KEY=/etc/quantfleet/client.key
  QUANTFLEET_TOKEN_FILE=/etc/quantfleet/client.token timeout 300 quantfleet)

say "a quantization job"
on "${client[@]}" submit --watch /srv/models/model.gguf /srv/models/out.gguf Q4_K_M >"$tmp/job.log" 2>&1 ||
  fail "the job failed: $(tail -5 "$tmp/job.log")"
docker cp "$machine:/srv/models/out.gguf" "$tmp/out.gguf"
[[ $(sha256sum <"$tmp/out.gguf" | cut -d' ' -f1) == "$reference" ]] ||
  fail "the artifact differs from quantfleet quantize"
[[ $(on stat -c %U /var/lib/quantfleet) == quantfleet ]] || fail "StateDirectory is not the quantfleet user's"
[[ -n $(on find /var/lib/quantfleet -type f -newer /etc/quantfleet/ca.pem) ]] ||
  fail "nothing was written to the state directory"

say "a calibration job (the model streamed into the worker's cache)"
on "${client[@]}" submit --watch --calibration /srv/models/calibration.txt --chunks 2 --ctx 64 \
  /srv/models/model.gguf /srv/models/calibrated.gguf Q4_K_M >"$tmp/calibration.log" 2>&1 ||
  fail "the calibration job failed: $(tail -5 "$tmp/calibration.log")"
on test -s /srv/models/calibrated.gguf.imatrix.gguf || fail "no importance matrix beside the artifact"
[[ -n $(on find /var/cache/quantfleet -type f) ]] || fail "the worker's CacheDirectory holds nothing"

say "systemd's side: a killed worker comes back, a stopped coordinator drains"
on systemctl kill -s KILL quantfleet-worker
restarted() { (($(on systemctl show -p NRestarts --value quantfleet-worker) >= 1)) && on systemctl is-active quantfleet-worker; }
wait_for 30 "systemd restarting the killed worker" restarted
on systemctl stop quantfleet-coordinator
[[ $(on systemctl show -p Result --value quantfleet-coordinator) == success ]] ||
  fail "the coordinator did not stop cleanly: $(on systemctl show -p Result --value quantfleet-coordinator)"

say "passed"
