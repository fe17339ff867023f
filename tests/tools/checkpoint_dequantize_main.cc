// quantfleet-checkpoint-dequantize: a GPTQ or AWQ checkpoint folder as an
// unquantized F32 checkpoint folder, read by the format's definition (for
// the benchmark and for comparing against other tools).
#include <string>

#include "absl/strings/str_format.h"
#include "tests/tools/quantized_checkpoint_reader.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    absl::FPrintF(stderr, "usage: quantfleet-checkpoint-dequantize QUANTIZED_DIR OUT_DIR\n");
    return 1;
  }
  if (absl::Status s = quantfleet::WriteDequantizedCheckpoint(argv[1], argv[2]); !s.ok()) {
    absl::FPrintF(stderr, "quantfleet-checkpoint-dequantize: %s\n", s.message());
    return 1;
  }
  return 0;
}
