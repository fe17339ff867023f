#!/usr/bin/env bash
# Checks the deployment files and the project's shell scripts.
#   deploy_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1
bin=$2

echo "== shellcheck"
shellcheck -x "$src"/scripts/*.sh "$src"/bench/*.sh "$src"/tests/gpu/*.sh "$src"/tests/deploy/*.sh \
  "$src"/tests/conformance/fetch_oracle.sh "$src"/.ci/run

echo "== systemd-analyze verify (with the binaries in place)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in "$src"/deploy/systemd/*.service; do
  sed -e "s|/usr/local/bin/|$bin/|" -e "s|^EnvironmentFile=.*|EnvironmentFile=-/dev/null|" "$unit" >"$tmp/$(basename "$unit")"
done
(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./*.service)

echo "== docker-compose config"
# Validates the compose file and its overlays against the Compose schema,
# with stand-in secret files.
mkdir -p "$tmp/compose/deploy/secrets"
cp "$src/deploy/docker-compose.yml" "$src/deploy/docker-compose.gpu.yml" "$src/tests/deploy/docker-compose.test.yml" \
  "$tmp/compose/deploy/"
for f in coordinator.pem coordinator.key ca.pem client.token worker.token worker-rig.pem worker-rig.key; do
  : >"$tmp/compose/deploy/secrets/$f"
done
for overlay in docker-compose.gpu.yml docker-compose.test.yml; do
  (cd "$tmp/compose/deploy" && docker-compose -f docker-compose.yml -f "$overlay" config --quiet)
done

echo "== Kubernetes manifests against the API schemas"
# kubernetes-models (npm, pinned by tests/deploy/kubernetes/package-lock.json),
# installed once into the build tree.
validator="$bin/../kubernetes-validation"
if ! cmp -s "$src/tests/deploy/kubernetes/package-lock.json" "$validator/package-lock.json" 2>/dev/null; then
  rm -rf "$validator"
  mkdir -p "$validator"
  cp "$src/tests/deploy/kubernetes/package.json" "$src/tests/deploy/kubernetes/package-lock.json" "$validator/"
  (cd "$validator" && npm ci --silent --no-audit --no-fund)
fi
cp "$src/tests/deploy/kubernetes/validate.mjs" "$validator/"
"$bin/quantfleet" certs init "$tmp/k8s-certs" --coordinator-host quantfleet-coordinator --worker worker >/dev/null
node "$validator/validate.mjs" "$src/deploy/kubernetes" "$tmp/k8s-certs"
# The check can fail: a misspelt field (kubectl apply refuses it) is caught.
cp -r "$src/deploy/kubernetes" "$tmp/k8s-typo"
sed -i 's/^\( *\)readinessProbe:/\1readinesProbe:/' "$tmp/k8s-typo/coordinator.yaml"
if node "$validator/validate.mjs" "$tmp/k8s-typo" "$tmp/k8s-certs" >"$tmp/k8s-typo.log"; then
  echo "the Kubernetes check passed a misspelt field (readinesProbe)" >&2
  exit 1
fi
grep -q "readinesProbe: no such field" "$tmp/k8s-typo.log"

echo "== YAML syntax and flag drift"
python=
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import yaml' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -z $python ]]; then
  echo "no Python with the yaml module: install python3-yaml (scripts/setup.sh does)" >&2
  exit 1
fi
"$python" "$src/tests/deploy/check_deploy.py" "$src" "$bin"
