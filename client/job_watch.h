// Showing jobs to a person or a script: a job's record (`status`), its
// progress until it ends (`watch`: a live bar on a terminal, a line a
// second otherwise, JSON events with --json), and a chain of jobs that
// follow one another (a calibrated job's quantization, a measured
// quantization's evaluation).
//
// Thread-safety: call from one thread; each prints to stdout and stderr.
#ifndef QUANTFLEET_CLIENT_JOB_WATCH_H_
#define QUANTFLEET_CLIENT_JOB_WATCH_H_

#include <google/protobuf/message.h>

#include <string>

#include "client/cluster_client.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

// A message as indented JSON, every field shown.
std::string ToJson(const google::protobuf::Message& m);

// "PPL(Q) 12.3456, PPL(base) 12.0000, ratio 1.0288, mean KLD 0.012345 ± ..."
std::string ReportLine(const quantfleet::v1::EvaluationReport& r);

// Prints a job's record; returns 0.
int PrintJob(const quantfleet::v1::Job& j, bool json);

// Shows a job's progress until it ends; returns the exit code (0 only
// when it succeeded).
int WatchJob(ClusterClient& client, const std::string& job_id, bool json);

// Watches `job_id`, then each job that follows it, until the chain ends or
// a job fails; `last` receives the id of the last job watched.
int WatchChain(ClusterClient& client, const std::string& job_id, bool json, std::string* last);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_JOB_WATCH_H_
