// quantfleet-worker: pulls quantization and calibration tasks from a
// coordinator and runs them on this machine's cores and GPUs.
#include "worker/worker_daemon.h"

int main(int argc, char** argv) { return quantfleet::RunWorkerDaemon(argc, argv, nullptr); }
