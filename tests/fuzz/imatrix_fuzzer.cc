// libFuzzer target: the importance-matrix parsers (llama.cpp's GGUF imatrix
// and the legacy .dat format) on arbitrary bytes, under ASan/UBSan. A file
// that parses must hold only finite weights, and FilterImatrix must take it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/quant/imatrix_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<quantfleet::Imatrix> m = quantfleet::ParseImatrix(data, size, "fuzz.imatrix");
  if (!m.ok()) return 0;
  for (const auto& [name, weights] : m->weights) {
    if (weights.empty()) std::abort();  // an entry without values
    for (float w : weights) {
      if (!std::isfinite(w)) std::abort();  // the parser promised finite weights
    }
  }
  quantfleet::FilterImatrix(*m, {"blk."}, {"output"});
  return 0;
}
