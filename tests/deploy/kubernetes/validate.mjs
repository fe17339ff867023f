// Checks deploy/kubernetes against the Kubernetes API schemas, offline: every
// resource the kustomization lists is parsed and validated by its kind's
// schema from kubernetes-models (types, required fields, formats); fields
// the API does not define are refused, as `kubectl apply` (strict field
// validation) refuses them, from the same package's type declarations; the
// secretGenerator's files are ones `quantfleet certs init` writes, and the
// probes ask ports the containers declare.
//   node validate.mjs KUSTOMIZE_DIR CERTS_DIR
// (CERTS_DIR: what `quantfleet certs init DIR --worker worker` wrote.)
import { readFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";

// The fields of the interface a declaration file (.d.ts) exports, each with
// its type and the file that type's names come from.
const modules = join(dirname(fileURLToPath(import.meta.url)), "node_modules");
const declarations = new Map();
function declaration(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const imports = new Map();
  for (const m of text.matchAll(/import \{ (\w+) \} from "([^"]+)"/g)) {
    const spec = m[2].replace(/\.js$/, "");
    imports.set(m[1], (spec.startsWith(".") ? resolve(dirname(file), spec) : join(modules, spec)) + ".d.ts");
  }
  let fields = null; // null: not an object (a string, a number, IntOrString...)
  const start = text.search(/export interface \w+( extends [\w, ]+)? \{/);
  if (start >= 0) fields = fieldsOf(text.slice(text.indexOf("{", start)));
  const result = { fields, imports };
  declarations.set(file, result);
  return result;
}

// The fields of an object type's text, "{ "name"?: TYPE; ... }" (a TYPE may
// itself hold braces), each with its TYPE.
function fieldsOf(type) {
  const fields = new Map();
  let depth = 0;
  let body = "";
  for (const c of type) {
    if (c === "}" && --depth === 0) break;
    if (depth > 0) body += c;
    if (c === "{") ++depth;
  }
  for (let at = 0; at < body.length; ) {
    const m = /"([^"]+)"\??:\s*/y;
    m.lastIndex = body.indexOf('"', at);
    const field = m.lastIndex < 0 ? null : m.exec(body);
    if (!field) break;
    let end = m.lastIndex;
    for (let d = 0; end < body.length && !(d === 0 && body[end] === ";"); ++end) {
      if ("{<(".includes(body[end])) ++d;
      if ("}>)".includes(body[end])) --d;
    }
    fields.set(field[1], body.slice(m.lastIndex, end).trim());
    at = end + 1;
  }
  return fields;
}

// Fields of `value` that the declaration of its type does not have.
function unknownFields(value, type, file, where, out) {
  if (value === null || typeof value !== "object") return;
  const array = /^Array<(.+)>$/s.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], file, `${where}[${i}]`, out));
    return;
  }
  const map = /^\{\s*\[key: string\]: (.+?);?\s*\}$/s.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value)) unknownFields(v, map[1], file, `${where}.${k}`, out);
    return;
  }
  let target = file;
  let fields = null;
  if (type.startsWith("{")) {
    fields = fieldsOf(type); // an object type written out in place
  } else {
    target = declaration(file).imports.get(type);
    if (!target) return; // a primitive or a literal union
    fields = declaration(target).fields;
  }
  if (!fields) return;
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) {
      out.push(`${where}.${k}: no such field (${[...fields.keys()].join(", ")})`);
    } else {
      unknownFields(v, fields.get(k), target, `${where}.${k}`, out);
    }
  }
}

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
    const group = object.apiVersion === "v1" ? "v1" : object.apiVersion;
    const file = join(modules, "kubernetes-models", group, `${object.kind}.d.ts`);
    const top = declaration(file);
    const unknown = [];
    for (const [k, v] of Object.entries(object)) {
      if (!top.fields.has(k)) unknown.push(`${k}: no such field`);
      else unknownFields(v, top.fields.get(k), file, k, unknown);
    }
    for (const u of unknown) problems.push(`${where}: ${u}`);
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
