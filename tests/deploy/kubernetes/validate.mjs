// Checks deploy/kubernetes against the Kubernetes API schemas, offline: every
// resource the kustomization lists is parsed and validated by its kind's
// schema from kubernetes-models (types, required fields, formats), the
// secretGenerator's files are ones `quantfleet certs init` writes, and the
// probes ask ports the containers declare.
//   node validate.mjs KUSTOMIZE_DIR CERTS_DIR
// (CERTS_DIR: what `quantfleet certs init DIR --worker worker` wrote.)
// Unknown fields are not reported: the schemas allow them, as the API
// server's non-strict validation does.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";

const [dir, certs] = process.argv.slice(2);
if (!dir || !certs) {
  console.error("usage: node validate.mjs KUSTOMIZE_DIR CERTS_DIR");
  process.exit(2);
}
const models = { v1: core, "apps/v1": apps };
const problems = [];
const kustomization = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"));
let count = 0;

for (const resource of kustomization.resources ?? []) {
  const docs = parseAllDocuments(readFileSync(join(dir, resource), "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      problems.push(`${resource}: not valid YAML: ${doc.errors[0].message}`);
      continue;
    }
    const object = doc.toJS();
    if (object === null) continue;
    const where = `${resource}: ${object.kind} ${object.metadata?.name}`;
    const Model = models[object.apiVersion]?.[object.kind];
    if (!Model) {
      problems.push(`${where}: ${object.apiVersion} ${object.kind} is not a kind this check knows`);
      continue;
    }
    try {
      new Model(object).validate();
      count++;
    } catch (error) {
      problems.push(`${where}: ${error.message}`);
      continue;
    }
    // Probes must ask a port the container declares (by number or name).
    for (const container of object.spec?.template?.spec?.containers ?? []) {
      const ports = new Set((container.ports ?? []).flatMap((p) => [p.containerPort, p.name]));
      for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        const probe = container[kind];
        const port = probe?.httpGet?.port ?? probe?.grpc?.port ?? probe?.tcpSocket?.port;
        if (probe && !ports.has(port)) {
          problems.push(`${where}: ${container.name}'s ${kind} asks port ${port}, which it does not declare`);
        }
      }
    }
  }
}

// The Secrets are generated from certs init's files: each must exist there.
for (const generator of kustomization.secretGenerator ?? []) {
  for (const entry of generator.files ?? []) {
    const file = entry.includes("=") ? entry.split("=")[1] : entry;
    if (!existsSync(join(certs, file))) {
      problems.push(`kustomization.yaml: secret ${generator.name} takes ${file}, which certs init does not write`);
    }
  }
}

if (problems.length > 0) {
  console.log(problems.join("\n"));
  process.exit(1);
}
console.log(`deploy/kubernetes: ${count} resources valid against the Kubernetes API schemas`);
