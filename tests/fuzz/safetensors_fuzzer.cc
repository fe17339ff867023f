// libFuzzer target: the safetensors reader on arbitrary bytes, under
// ASan/UBSan. A file it accepts must describe tensors that lie inside the
// input, tile its data exactly, and match their shapes; the fuzzer checks
// that and reads every tensor's bytes.
//
// QUANTFLEET_FUZZ_WRITE_SEED=FILE writes a valid two-tensor file there and
// exits (the corpus seed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/safetensors/safetensors_file.h"
#include "tests/fuzz/fuzz_seed.h"

namespace {

std::string Seed() {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("model.embed_tokens.weight":{"dtype":"BF16","shape":[2,4],"data_offsets":[16,32]}})";
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  return out + header + std::string(32, '\x3f');
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quantfleet::WriteSeedIfAsked(Seed);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<quantfleet::SafetensorsFile> file = quantfleet::SafetensorsFile::Parse("fuzz.safetensors", bytes);
  if (!file.ok()) return 0;
  uint64_t covered = 0;
  unsigned sum = 0;
  for (const quantfleet::SafetensorsTensor& t : file->tensors()) {
    if (t.offset > size || t.nbytes > size - t.offset) std::abort();  // outside the input
    if (static_cast<uint64_t>(t.elements()) * quantfleet::SafetensorsDtypeBytes(t.dtype) != t.nbytes) std::abort();
    if (file->Find(t.name) != &t) std::abort();
    for (uint64_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    covered += t.nbytes;
  }
  if (!file->tensors().empty() && file->tensors().back().offset + file->tensors().back().nbytes != size) std::abort();
  (void)sum;
  (void)covered;
  return 0;
}
