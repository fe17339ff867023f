// A job as the coordinator runs it. See active_job.h.
#include "coordinator/active_job.h"

#include <algorithm>

#include "coordinator/job_kind.h"

namespace quantfleet {

ActiveJob::ActiveJob() = default;
ActiveJob::~ActiveJob() = default;

void ActiveJob::SetTasks(std::vector<TaskDef> defs, size_t units) {
  tasks = std::move(defs);
  rt.assign(tasks.size(), TaskRuntime());
  source_crc.assign(tasks.size(), std::nullopt);
  unit_tasks_left.assign(units, 0);
  for (const TaskDef& t : tasks) ++unit_tasks_left[t.unit];
}

void ActiveJob::ReleaseInputs() {
  model.reset();
  if (kind) kind->ReleaseInputs();
}

bool ActiveJob::all_finished() const {
  return std::all_of(rt.begin(), rt.end(), [](const TaskRuntime& r) { return r.finished(); });
}

}  // namespace quantfleet
