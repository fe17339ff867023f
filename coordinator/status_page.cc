#include "coordinator/status_page.h"

#include <google/protobuf/util/json_util.h>

#include "core/ops/daemon_flags.h"

namespace quantfleet {

const std::string& StatusPageHtml() {
  // Rendering happens in the browser from /api/status, with textContent
  // only (job paths and error texts are never parsed as HTML).
  static const std::string* const kPage = new std::string(R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quantfleet</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  #meta { color: #666; }
  #banner { display: none; background: #fde2e1; border: 1px solid #e0a5a3; padding: .4em .7em; margin: .6em 0; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
  th { font-weight: 600; background: #f0f0f0; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { width: 12em; height: .9em; background: #e5e5e5; border-radius: 3px; overflow: hidden; display: inline-block;
         vertical-align: middle; margin-right: .5em; }
  .bar > div { height: 100%; background: #3b82f6; }
  .state-succeeded .bar > div { background: #16a34a; }
  .state-failed .bar > div, .state-cancelled .bar > div { background: #9ca3af; }
  .state { font-weight: 600; }
  .state-failed .state, .lost { color: #b91c1c; }
  .state-succeeded .state, .alive { color: #15803d; }
  .empty { color: #888; font-style: italic; }
  .error { color: #b91c1c; }
  .waiting { color: #92400e; }
  code { font-size: .95em; }
</style>
</head>
<body>
<h1>quantfleet</h1>
<div id="meta">loading&hellip;</div>
<div id="banner"></div>
<noscript><p class="error">This page needs JavaScript; the same data is at /api/status and /metrics.</p></noscript>
<h2>Jobs</h2>
<table id="jobs"><thead><tr><th>Job</th><th>State</th><th>Progress</th><th class="num">Tensors</th><th>Type</th>
<th class="num">Throughput</th><th class="num">ETA</th><th>Output</th></tr></thead><tbody></tbody></table>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>Worker</th><th>Host</th><th>State</th><th>GPUs</th><th class="num">Threads</th>
<th class="num">Tasks held</th><th class="num">Tasks done</th><th class="num">Throughput</th></tr></thead><tbody></tbody>
</table>
<h2>Recent failures</h2>
<table id="failures"><thead><tr><th>When</th><th>Job</th><th>Task</th><th>Worker</th><th>Reason</th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
const num = v => Number(v || 0);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  n = num(n);
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
}
function duration(s) {
  if (!isFinite(s) || s < 0) return "";
  s = Math.round(s);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}
function when(ms) { return ms ? new Date(num(ms)).toLocaleTimeString() : ""; }
function fill(id, rows, columns, empty) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", empty, "empty");
    td.colSpan = columns;
    tr.append(td);
    body.append(tr);
  }
  for (const r of rows) body.append(r);
}
function jobRow(event, now) {
  const job = event.job || {};
  const state = (job.state || "JOB_STATE_UNSPECIFIED").replace("JOB_", "").toLowerCase();
  const total = num(job.bytesTotal), done = num(job.bytesDone);
  const fraction = state === "succeeded" ? 1 : (total > 0 ? done / total : 0);
  const rate = (event.workers || []).reduce((a, w) => a + num(w.bytesPerSecond), 0);
  const tr = el("tr", null, "job state-" + state);
  tr.dataset.job = job.id;
  tr.append(el("td", job.id), el("td", state, "state"));
  const progress = el("td");
  const bar = el("div", null, "bar");
  const inner = el("div");
  inner.style.width = (100 * fraction).toFixed(1) + "%";
  bar.append(inner);
  progress.append(bar, el("span", (100 * fraction).toFixed(1) + "%", "percent"));
  tr.append(progress);
  tr.append(el("td", num(job.tensorsDone) + " / " + num(job.tensorsTotal), "num"));
  const stages = ((job.plan || {}).stageEndLayers || []).length;
  tr.append(el("td", job.calibration ? (stages > 1 ? "imatrix, " + stages + "-stage pipeline" : "imatrix")
                    : job.evaluation ? "evaluation"
                    : job.typeChoice ? "types for a size" : (job.options || {}).fileType || ""));
  tr.append(el("td", state === "running" && rate > 0 ? bytes(rate) + "/s" : "", "num"));
  let eta = "";
  if (state === "running" && rate > 0) eta = duration((total - done) / rate);
  if (state === "succeeded" && job.finishedUnixMs) {
    eta = "took " + duration((num(job.finishedUnixMs) - num(job.createdUnixMs)) / 1000);
  }
  tr.append(el("td", eta, "num"));
  const out = el("td");
  out.append(el("code", job.output || ""));
  const report = job.report || {};
  if (num(report.positions) > 0) {
    out.append(el("div", "PPL " + num(report.ppl).toFixed(4) + " (base " + num(report.pplBase).toFixed(4) +
                         ", ratio " + num(report.pplRatio).toFixed(4) + "), mean KLD " + num(report.kld).toFixed(6) +
                         ", same top " + (100 * num(report.sameTop)).toFixed(2) + "%", "quality"));
  }
  if (job.error) out.append(el("div", job.error, "error"));
  if (job.waiting) out.append(el("div", job.waiting, "waiting"));
  tr.append(out);
  return tr;
}
function workerRow(w) {
  const info = w.info || {};
  const tr = el("tr", null, "worker");
  tr.dataset.worker = info.name;
  tr.append(el("td", info.name), el("td", info.hostname));
  tr.append(el("td", w.alive ? "alive" : "lost", w.alive ? "alive" : "lost"));
  const gpus = (info.gpus || []).map(g => g.name + " (" + bytes(g.memoryBytes) + ")").join(", ");
  tr.append(el("td", gpus || "none (CPU)"));
  tr.append(el("td", num(info.threads), "num"), el("td", num(w.tasksHeld), "num"), el("td", num(w.tasksDone), "num"));
  tr.append(el("td", num(w.bytesPerSecond) > 0 ? bytes(w.bytesPerSecond) + "/s" : "", "num"));
  return tr;
}
function failureRow(f) {
  const tr = el("tr", null, "failure");
  tr.append(el("td", when(f.unixMs)), el("td", f.jobId), el("td", num(f.taskId) < 0 ? "job" : num(f.taskId)),
            el("td", f.workerId || ""), el("td", f.reason));
  return tr;
}
function render(s) {
  const now = num(s.nowUnixMs);
  document.getElementById("meta").textContent =
      "coordinator " + (s.version || "") + " \u00b7 updated " + new Date(now).toLocaleTimeString();
  fill("jobs", (s.jobs || []).map(e => jobRow(e, now)), 8, "no jobs yet");
  fill("workers", (s.workers || []).map(workerRow), 8, "no workers registered");
  fill("failures", (s.recentFailures || []).map(failureRow), 5, "none");
  document.body.dataset.loaded = "true";
}
async function refresh() {
  const banner = document.getElementById("banner");
  try {
    const response = await fetch("/api/status", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    banner.style.display = "none";
  } catch (e) {
    banner.textContent = "cannot reach the coordinator (" + e.message + "); showing the last data";
    banner.style.display = "block";
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)html");
  return *kPage;
}

std::string StatusJson(Coordinator& coordinator) {
  quantfleet::v1::ClusterStatus status = coordinator.Status(100);
  status.set_version(BuildVersion());
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(status, &out, options);
  return out;
}

}  // namespace quantfleet
