#include "core/gguf/gguf_writer.h"

#include <cstring>
#include <string_view>

namespace quantfleet {
namespace {

class ByteSink {
 public:
  template <typename T>
  void Put(T v) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void PutBytes(const std::vector<uint8_t>& b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void PadTo(size_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back(0);
  }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

}  // namespace

std::vector<uint8_t> SerializeGgufMeta(const std::vector<GgufKv>& kvs, const std::vector<GgufTensorInfo>& tensors,
                                       size_t alignment) {
  ByteSink out;
  out.PutBytes({'G', 'G', 'U', 'F'});
  out.Put<uint32_t>(kGgufVersion);
  out.Put<int64_t>(static_cast<int64_t>(tensors.size()));
  out.Put<int64_t>(static_cast<int64_t>(kvs.size()));
  for (const GgufKv& kv : kvs) {
    out.PutString(kv.key);
    if (kv.is_array) {
      out.Put<uint32_t>(static_cast<uint32_t>(GgufValueType::kArray));
      out.Put<uint32_t>(static_cast<uint32_t>(kv.type));
      out.Put<uint64_t>(kv.size());
    } else {
      out.Put<uint32_t>(static_cast<uint32_t>(kv.type));
    }
    if (kv.type == GgufValueType::kString) {
      for (const std::string& s : kv.strings) out.PutString(s);
    } else {
      out.PutBytes(kv.raw);
    }
  }
  for (const GgufTensorInfo& t : tensors) {
    out.PutString(t.name);
    const int n_dims = t.n_dims();
    out.Put<uint32_t>(static_cast<uint32_t>(n_dims));
    for (int j = 0; j < n_dims; ++j) out.Put<int64_t>(t.ne[j]);
    out.Put<uint32_t>(static_cast<uint32_t>(t.type));
    out.Put<uint64_t>(t.offset);
  }
  out.PadTo(alignment);
  return out.Take();
}

uint64_t LayOutTensors(std::vector<GgufTensorInfo>& tensors, size_t alignment) {
  uint64_t offset = 0;
  for (GgufTensorInfo& t : tensors) {
    t.offset = offset;
    offset += (t.nbytes + alignment - 1) / alignment * alignment;
  }
  return offset;
}

}  // namespace quantfleet
