#include "core/ops/http_endpoint.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

#include "core/ops/http_probe.h"

namespace quantfleet {
namespace {

TEST(HttpEndpointTest, ServesRoutesOnLoopback) {
  std::atomic<int> calls{0};
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint =
      HttpEndpoint::Start("127.0.0.1:0", {{"/metrics",
                                           [&] {
                                             ++calls;
                                             return HttpReply{"text/plain", "m 1\n"};
                                           }},
                                          {"/", [] {
                                             return HttpReply{"text/html", "<p>hi</p>"};
                                           }}});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_GT((*endpoint)->port(), 0);
  httplib::Client client("127.0.0.1", (*endpoint)->port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Result r = client.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "m 1\n");
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain");
  EXPECT_EQ(calls.load(), 1);
  r = client.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "<p>hi</p>");
  r = client.Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

TEST(HttpEndpointTest, BadAddressesAreErrors) {
  EXPECT_EQ(HttpEndpoint::Start("no-port", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpEndpoint::Start("127.0.0.1:99999", {}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> first = HttpEndpoint::Start("127.0.0.1:0", {});
  ASSERT_TRUE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_EQ(HttpEndpoint::Start(taken, {}).status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpProbeTest, ReturnsTheStatusAndBodyAndReachesWildcardAddressesOnLoopback) {
  std::atomic<bool> draining{false};
  absl::StatusOr<std::unique_ptr<HttpEndpoint>> endpoint = HttpEndpoint::Start(
      "127.0.0.1:0", {{"/healthz", [&] {
                         return draining ? HttpReply{.body = "draining\n", .status = 503} : HttpReply{.body = "ok\n"};
                       }}});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const std::string port = std::to_string((*endpoint)->port());

  absl::StatusOr<HttpProbeReply> reply = HttpGet("127.0.0.1:" + port, "/healthz", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ok\n");
  // A daemon's own listen address on every interface is asked on loopback.
  reply = HttpGet("0.0.0.0:" + port, "/healthz", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  draining = true;
  reply = HttpGet(":" + port, "/healthz", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->body, "draining\n");
  reply = HttpGet("127.0.0.1:" + port, "/nope", absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 404);
}

TEST(HttpProbeTest, BadAddressesAndSilencesAreErrors) {
  EXPECT_EQ(HttpGet("no-port", "/healthz", absl::Seconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpGet("127.0.0.1:0", "/healthz", absl::Seconds(1)).status().code(), absl::StatusCode::kInvalidArgument);
  // A port that was just free: nothing answers there.
  int port = 0;
  {
    absl::StatusOr<std::unique_ptr<HttpEndpoint>> gone = HttpEndpoint::Start("127.0.0.1:0", {});
    ASSERT_TRUE(gone.ok());
    port = (*gone)->port();
  }
  absl::StatusOr<HttpProbeReply> reply = HttpGet("127.0.0.1:" + std::to_string(port), "/healthz", absl::Seconds(2));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find(std::to_string(port)), std::string::npos) << reply.status();
}

}  // namespace
}  // namespace quantfleet
