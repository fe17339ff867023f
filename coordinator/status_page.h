// The coordinator's read-only status page, served on its metrics port:
// "/" is a self-contained HTML page (no external assets, so it works
// offline) that fetches "/api/status" every two seconds and shows jobs with
// progress bars and ETA, workers with their GPUs and throughput, and the
// recent failures.
//
// Thread-safety: both functions may be called from any thread.
#ifndef QUANTFLEET_COORDINATOR_STATUS_PAGE_H_
#define QUANTFLEET_COORDINATOR_STATUS_PAGE_H_

#include <string>

#include "coordinator/coordinator.h"

namespace quantfleet {

// The HTML of "/".
const std::string& StatusPageHtml();

// The JSON of "/api/status": ClusterStatus in the proto3 JSON mapping
// (64-bit integers as strings), the newest 100 jobs.
std::string StatusJson(Coordinator& coordinator);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_STATUS_PAGE_H_
