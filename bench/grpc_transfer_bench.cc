// gRPC chunk transfer rate on loopback: quantfleet's own messages (1 MiB
// DataChunk / UploadChunk with a CRC32C computed by the sender and checked
// by the receiver), both directions, no disk. Prints GB/s.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "core/util/crc32c.h"
#include "proto/quantfleet.grpc.pb.h"

namespace v1 = quantfleet::v1;

namespace {

constexpr int64_t kChunk = 1 << 20;

class Service final : public v1::WorkerService::Service {
 public:
  grpc::Status ReadSource(grpc::ServerContext*, const v1::ReadSourceRequest* req,
                          grpc::ServerWriter<v1::DataChunk>* writer) override {
    const std::string payload(kChunk, 'q');
    for (int64_t off = 0; off < req->length(); off += kChunk) {
      v1::DataChunk c;
      c.set_offset(off);
      c.set_data(payload);
      c.set_crc32c(quantfleet::Crc32c(c.data().data(), c.data().size()));
      if (!writer->Write(c)) break;
    }
    return grpc::Status::OK;
  }
  grpc::Status UploadResult(grpc::ServerContext*, grpc::ServerReader<v1::UploadChunk>* reader,
                            v1::UploadResponse* resp) override {
    v1::UploadChunk c;
    int64_t total = 0;
    while (reader->Read(&c)) {
      if (quantfleet::Crc32c(c.data().data(), c.data().size()) != c.crc32c()) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS, "crc");
      }
      total += static_cast<int64_t>(c.data().size());
    }
    resp->set_committed(total);
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int64_t gib = argc > 1 ? std::atoll(argv[1]) : 2;
  Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = v1::WorkerService::NewStub(
      grpc::CreateChannel(absl::StrFormat("127.0.0.1:%d", port), grpc::InsecureChannelCredentials()));
  const int64_t bytes = gib << 30;

  auto t0 = std::chrono::steady_clock::now();
  {
    grpc::ClientContext ctx;
    v1::ReadSourceRequest req;
    req.set_length(bytes);
    auto reader = stub->ReadSource(&ctx, req);
    v1::DataChunk c;
    int64_t got = 0;
    while (reader->Read(&c)) {
      if (quantfleet::Crc32c(c.data().data(), c.data().size()) != c.crc32c()) return 1;
      got += static_cast<int64_t>(c.data().size());
    }
    if (!reader->Finish().ok() || got != bytes) return 1;
  }
  auto t1 = std::chrono::steady_clock::now();
  {
    grpc::ClientContext ctx;
    v1::UploadResponse resp;
    auto writer = stub->UploadResult(&ctx, &resp);
    const std::string payload(kChunk, 'u');
    for (int64_t off = 0; off < bytes; off += kChunk) {
      v1::UploadChunk c;
      c.set_offset(off);
      c.set_data(payload);
      c.set_crc32c(quantfleet::Crc32c(payload.data(), payload.size()));
      writer->Write(c);
    }
    writer->WritesDone();
    if (!writer->Finish().ok() || resp.committed() != bytes) return 1;
  }
  auto t2 = std::chrono::steady_clock::now();
  const double down = std::chrono::duration<double>(t1 - t0).count();
  const double up = std::chrono::duration<double>(t2 - t1).count();
  absl::PrintF("download (ReadSource): %.2f GB/s\nupload (UploadResult): %.2f GB/s\n", bytes / down / 1e9,
               bytes / up / 1e9);
  server->Shutdown();
  return 0;
}
