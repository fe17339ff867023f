# Shared by the container tests (compose_test.sh, systemd_test.sh); sourced,
# not run. Gives them a Docker engine, the Debian 12 base image and the
# project's images:
#   lab_start_docker TMP      dockerd when none answers (no bridge, no iptables);
#                             lab_stop_docker stops only what it started
#   lab_base_image TMP        quantfleet-test/debian:bookworm, debootstrapped
#                             from Debian's mirror once and kept
#   lab_build_images SRC TMP  quantfleet/{coordinator,worker}:$QUANTFLEET_TAG
#                             from deploy/docker/Dockerfile on that base
#   lab_up SRC TMP            all three; lab_finish RC TMP undoes what the
#                             test started, removes TMP and exits with RC
#   lab_free_ports N          N free loopback ports, on one line
# and the helpers say, fail and wait_for. Built layers stay cached; the build
# stage is tagged so that older ones can be pruned.
# shellcheck shell=bash

readonly LAB_BASE_IMAGE=quantfleet-test/debian:bookworm
export QUANTFLEET_TAG=${QUANTFLEET_TAG:-test} DOCKER_BUILDKIT=0
lab_started=$(date +%s)
lab_dockerd_pid=

say() { echo "$(basename "$0") [$(($(date +%s) - lab_started)) s]: $*"; }
fail() {
  echo "$(basename "$0"): FAILED: $*" >&2
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: runs COMMAND every half second until it
# succeeds; fails naming WHAT after SECONDS.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "$what: not within ${seconds} s"
    sleep 0.5
  done
}

lab_check_tools() {
  [[ $(id -u) -eq 0 ]] || fail "needs root (it starts dockerd); scripts/setup.sh installs what it needs"
  local tool
  for tool in docker dockerd debootstrap "$@"; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh"
  done
}

lab_start_docker() {
  docker info >/dev/null 2>&1 && return 0
  say "starting dockerd"
  dockerd --bridge=none --iptables=false --ip6tables=false --pidfile "$1/dockerd.pid" >"$1/dockerd.log" 2>&1 &
  lab_dockerd_pid=$!
  wait_for 60 "dockerd answering (log: $1/dockerd.log)" docker info
}

lab_stop_docker() {
  [[ -n $lab_dockerd_pid ]] || return 0
  kill "$lab_dockerd_pid" 2>/dev/null
  for _ in $(seq 1 60); do
    kill -0 "$lab_dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
}

lab_base_image() {
  docker image inspect "$LAB_BASE_IMAGE" >/dev/null 2>&1 && return 0
  say "making the Debian 12 base image with debootstrap"
  debootstrap --variant=minbase bookworm "$1/rootfs" http://deb.debian.org/debian >"$1/debootstrap.log" 2>&1 ||
    fail "debootstrap: $(tail -5 "$1/debootstrap.log")"
  rm -rf "$1"/rootfs/var/cache/apt/archives/*.deb "$1"/rootfs/var/lib/apt/lists/*
  tar -C "$1/rootfs" -c . | docker import - "$LAB_BASE_IMAGE" >/dev/null
  rm -rf "$1/rootfs"
}

# docker build as a user runs it, on the host's network (for apt).
lab_build() { # lab_build SRC TMP TARGET TAG
  docker build --network host --force-rm -f "$1/deploy/docker/Dockerfile" --build-arg "BASE=$LAB_BASE_IMAGE" \
    --target "$3" -t "$4" "$1" >"$2/build-$3.log" 2>&1 || fail "docker build --target $3 (log follows)
$(tail -30 "$2/build-$3.log")"
}

lab_build_images() {
  say "building the images on $LAB_BASE_IMAGE (the project compiles once, in the build stage)"
  lab_build "$1" "$2" build "quantfleet/build:$QUANTFLEET_TAG"
  local target
  for target in coordinator worker; do
    lab_build "$1" "$2" "$target" "quantfleet/$target:$QUANTFLEET_TAG"
  done
  # Build stages of earlier sources (untagged now) are dropped.
  docker image prune -f --filter label=quantfleet.stage=build >/dev/null
}

lab_up() {
  lab_start_docker "$2"
  lab_base_image "$2"
  lab_build_images "$1" "$2"
}

lab_finish() {
  lab_stop_docker
  rm -rf "$2"
  exit "$1"
}

lab_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "$1"
}
