#include "core/calibration/imatrix_checkpoint.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_format.h"
#include "core/io/atomic_file.h"
#include "core/util/crc32c.h"

namespace quantfleet {
namespace {

constexpr char kMagic[] = "QFIMCKP1";  // 8 bytes, no terminator written

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Reads a T at *at, or returns false past the end.
template <typename T>
bool Get(const std::string& in, size_t* at, T* v) {
  if (in.size() - *at < sizeof(T)) return false;
  std::memcpy(v, in.data() + *at, sizeof(T));
  *at += sizeof(T);
  return true;
}

}  // namespace

absl::Status WriteImatrixCheckpoint(const std::string& path, const std::string& identity, int chunks_done,
                                    const ChunkStatistics& total, const ImatrixLayout& layout) {
  absl::StatusOr<std::string> encoded = EncodeChunk(total, layout);
  if (!encoded.ok()) return encoded.status();
  std::string out(kMagic, 8);
  Put<uint32_t>(&out, static_cast<uint32_t>(identity.size()));
  out += identity;
  Put<uint32_t>(&out, static_cast<uint32_t>(chunks_done));
  Put<uint64_t>(&out, encoded->size());
  out += *encoded;
  Put<uint32_t>(&out, Crc32c(out.data(), out.size()));
  absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path, /*overwrite=*/true);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->PWrite(out.data(), out.size(), 0); !s.ok()) return s;
  return (*file)->Commit();
}

absl::StatusOr<std::optional<ImatrixCheckpoint>> ReadImatrixCheckpoint(const std::string& path,
                                                                       const std::string& identity,
                                                                       const ImatrixLayout& layout,
                                                                       bool process_output) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::optional<ImatrixCheckpoint>();
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto damaged = [&](const char* what) { return absl::DataLossError(absl::StrFormat("%s: %s", path, what)); };
  uint32_t crc;
  if (bytes.size() < 8 + 4 + 4 + 8 + 4 || bytes.compare(0, 8, kMagic, 8) != 0) return damaged("not a checkpoint");
  std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
  if (Crc32c(bytes.data(), bytes.size() - 4) != crc) return damaged("its checksum does not match (damaged)");
  const std::string body = bytes.substr(0, bytes.size() - 4);
  size_t at = 8;
  uint32_t identity_size, chunks_done;
  uint64_t encoded_size;
  if (!Get(body, &at, &identity_size) || body.size() - at < identity_size) return damaged("truncated");
  const std::string stored = body.substr(at, identity_size);
  at += identity_size;
  if (!Get(body, &at, &chunks_done) || !Get(body, &at, &encoded_size) || body.size() - at != encoded_size) {
    return damaged("truncated");
  }
  if (stored != identity) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s belongs to another run (%s), not this one (%s)", path, stored, identity));
  }
  absl::StatusOr<ChunkStatistics> total = DecodeChunk(std::string_view(body).substr(at), layout, process_output);
  if (!total.ok()) return damaged("its statistics do not fit this model");
  ImatrixCheckpoint checkpoint(process_output);
  checkpoint.chunks_done = static_cast<int>(chunks_done);
  checkpoint.total = *std::move(total);
  return std::optional<ImatrixCheckpoint>(std::move(checkpoint));
}

}  // namespace quantfleet
