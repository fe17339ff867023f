"""Checks deploy/ against the binaries it configures.

Every YAML file must parse, and every flag (--name) and QUANTFLEET_* variable
used in a unit, env file, Dockerfile, compose file or manifest must be one the
binary it is given to accepts (as listed by its --help). The TOML configs that
`quantfleet certs init` writes must name flags of their daemon too. Compose
services must build stages of deploy/docker/Dockerfile, manifests must use
the images compose names, and every published or declared port must be one the daemon listens
on (--listen, --metrics-listen). The worker's unit must leave /dev/nvidia*
visible.

Usage: check_deploy.py SOURCE_DIR BIN_DIR
"""
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

src, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
deploy = src / "deploy"
problems = []


def flags_of(binary):
    out = subprocess.run([str(bin_dir / binary), "--help"], capture_output=True, text=True, timeout=60)
    flags = {f.replace("-", "_") for f in re.findall(r"^  --([a-z0-9_-]+)", out.stdout, re.M)}
    if len(flags) < 5:
        problems.append(f"{binary} --help lists only {sorted(flags)}")
    return flags


known = {b: flags_of(b) for b in ("quantfleet-coordinator", "quantfleet-worker")}


def check_flag(where, binary, flag):
    name = flag.lstrip("-").split("=", 1)[0].replace("-", "_")
    if name not in known[binary]:
        problems.append(f"{where}: {binary} has no flag --{flag.lstrip('-').split('=', 1)[0]}")


def check_env(where, binary, var):
    if var.startswith("QUANTFLEET_"):
        check_flag(where, binary, var[len("QUANTFLEET_"):].lower())


def flags_in(text):
    return re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*(?:=\S*)?", text)


# systemd units and env files
for unit, binary, env in (("quantfleet-coordinator.service", "quantfleet-coordinator", "coordinator.env"),
                          ("quantfleet-worker.service", "quantfleet-worker", "worker.env")):
    text = (deploy / "systemd" / unit).read_text()
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            for f in flags_in(line):
                check_flag(unit, binary, f)
    for line in (deploy / "systemd" / env).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            check_env(env, binary, line.split("=", 1)[0])

# The worker reaches its GPUs through /dev/nvidia* (NVML, CUDA): its unit must
# not hide devices.
worker_unit = (deploy / "systemd" / "quantfleet-worker.service").read_text()
for setting in ("PrivateDevices=yes", "PrivateDevices=true", "DevicePolicy=closed", "DevicePolicy=strict"):
    if re.search(rf"^{setting}\s*$", worker_unit, re.M):
        problems.append(f"quantfleet-worker.service: {setting} hides the GPUs (/dev/nvidia*) from the worker")

# The Dockerfile: each image stage's ENTRYPOINT flags and QUANTFLEET_* ENV.
dockerfile = deploy / "docker" / "Dockerfile"
stages = {}  # stage name -> its lines
stage = None
for line in dockerfile.read_text().splitlines():
    m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
    if m:
        stage = m.group(1)
        stages[stage] = []
    elif stage:
        stages[stage].append(line)
for stage, binary in (("coordinator", "quantfleet-coordinator"), ("worker", "quantfleet-worker")):
    if stage not in stages:
        problems.append(f"Dockerfile: no stage '{stage}'")
        continue
    for line in stages[stage]:
        if line.startswith("ENTRYPOINT"):
            for f in re.findall(r'"(--[a-z][a-z0-9-]*)"', line):
                check_flag(f"Dockerfile ({stage})", binary, f)
        for var in re.findall(r"\b(QUANTFLEET_[A-Z_]+)=", line):
            check_env(f"Dockerfile ({stage})", binary, var)

# YAML: syntax everywhere, then compose services and manifests' containers
documents = {}
for path in sorted(deploy.rglob("*.y*ml")):
    try:
        documents[path] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problems.append(f"{path.relative_to(src)}: not valid YAML: {e}")

def ports_in(values):
    """Ports that --listen / --metrics-listen settings (HOST:PORT) name."""
    return {int(v.rsplit(":", 1)[1]) for v in values if re.fullmatch(r"\S+:[0-9]+", v)}


# Compose: the file, its GPU overlay and the compose test's overlay.
images = {}  # image name without tag -> the Dockerfile stage that builds it
overlays = [deploy / "docker-compose.yml", deploy / "docker-compose.gpu.yml",
            src / "tests" / "deploy" / "docker-compose.test.yml"]
for path in overlays[2:]:
    try:
        documents[path] = [yaml.safe_load(path.read_text())]
    except yaml.YAMLError as e:
        problems.append(f"{path.relative_to(src)}: not valid YAML: {e}")
for path in overlays:
    compose = documents.get(path, [{}])[0]
    for service, binary in (("coordinator", "quantfleet-coordinator"), ("worker", "quantfleet-worker")):
        spec = compose.get("services", {}).get(service)
        if spec is None:
            if path.name == "docker-compose.yml":
                problems.append(f"docker-compose.yml: no service '{service}'")
            continue
        build = spec.get("build", {})
        if "dockerfile" in build and not (src / build["dockerfile"]).is_file():
            problems.append(f"{path.name}: service {service} builds from missing {build['dockerfile']}")
        if "target" in build and build["target"] not in stages:
            problems.append(f"{path.name}: service {service} builds stage {build['target']}, not in the Dockerfile")
        if "image" in spec:
            images[spec["image"].split(":")[0]] = service
        listened = ports_in(str(v).split()[0] for k, v in spec.get("environment", {}).items() if k.endswith("LISTEN"))
        for mapping in spec.get("ports", []):
            container_port = int(str(mapping).split(":")[-1])
            if container_port not in listened:
                problems.append(f"{path.name}: {service} publishes port {container_port}, which it does not listen on")
        for var in spec.get("environment", {}):
            check_env(path.name, binary, var)
        for arg in spec.get("command", []):
            if str(arg).startswith("--"):
                check_flag(path.name, binary, str(arg))

for path, docs in documents.items():
    if "kubernetes" not in path.parts:
        continue
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            image = container.get("image", "")
            if image.split(":")[0] not in images:
                problems.append(f"{path.name}: image {image} is not one deploy/ builds ({sorted(images)})")
            binary = "quantfleet-coordinator" if "coordinator" in image else "quantfleet-worker"
            for arg in container.get("args", []):
                check_flag(path.name, binary, str(arg))
            listened = ports_in(str(a).split("=", 1)[1] for a in container.get("args", [])
                                if str(a).startswith(("--listen=", "--metrics-listen=")))
            for port in container.get("ports", []):
                if port.get("containerPort") not in listened:
                    problems.append(f"{path.name}: containerPort {port.get('containerPort')} is not a port it listens on")
            for env in container.get("env", []):
                check_env(path.name, binary, env.get("name", ""))

# The configs `quantfleet certs init` writes: every key a flag of its daemon.
with tempfile.TemporaryDirectory() as tmp:
    init = subprocess.run([str(bin_dir / "quantfleet"), "certs", "init", tmp + "/lab", "--coordinator-host", "nas.lan",
                           "--worker", "rig1"], capture_output=True, text=True, timeout=60)
    if init.returncode != 0:
        problems.append(f"quantfleet certs init failed: {init.stderr}")
    for config in sorted(Path(tmp, "lab").glob("*.toml")):
        binary = "quantfleet-coordinator" if config.name == "coordinator.toml" else "quantfleet-worker"
        for key in tomllib.loads(config.read_text()):
            check_flag(f"certs init's {config.name}", binary, key)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"deploy/: {len(documents)} YAML files parse; every flag and QUANTFLEET_* variable exists")
