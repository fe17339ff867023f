// libFuzzer target: the GGUF parser on arbitrary bytes, under ASan/UBSan.
// A parse that succeeds must describe tensors that lie inside the input,
// so the fuzzer also reads every tensor's bytes through the validator.
#include <cstddef>
#include <cstdint>

#include "core/gguf/gguf_file.h"
#include "core/quant/row_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<quantfleet::GgufFile> file = quantfleet::GgufFile::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  for (const quantfleet::GgufTensorInfo& t : file->tensors()) {
    const uint8_t* p = data + file->data_offset() + t.offset;
    (void)quantfleet::ValidateRowData(t.type, p, t.nbytes);
  }
  return 0;
}
