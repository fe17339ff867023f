#include "client/certificate_authority.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

TEST(CertificateAuthorityTest, ServerCertificateChainsAndNamesItsHosts) {
  absl::StatusOr<PemPair> ca = CreateCertificateAuthority("test CA", 30);
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_NE(ca->certificate.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(ca->private_key.find("BEGIN PRIVATE KEY"), std::string::npos);
  absl::StatusOr<PemPair> server =
      IssueCertificate(*ca, "coordinator", CertificateRole::kServer, {"nas.lan", "192.168.1.10", "::1"}, 30);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(VerifyCertificate(ca->certificate, server->certificate, "nas.lan").ok());
  EXPECT_TRUE(VerifyCertificate(ca->certificate, server->certificate, "192.168.1.10").ok());
  EXPECT_TRUE(VerifyCertificate(ca->certificate, server->certificate, "::1").ok());
  absl::Status other_host = VerifyCertificate(ca->certificate, server->certificate, "rig1.lan");
  EXPECT_EQ(other_host.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(other_host.message().find("rig1.lan"), std::string::npos);
}

TEST(CertificateAuthorityTest, AnotherCaIsNotTrusted) {
  absl::StatusOr<PemPair> ca = CreateCertificateAuthority("one", 30);
  absl::StatusOr<PemPair> other = CreateCertificateAuthority("two", 30);
  ASSERT_TRUE(ca.ok() && other.ok());
  absl::StatusOr<PemPair> client = IssueCertificate(*ca, "rig1", CertificateRole::kClient, {}, 30);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(VerifyCertificate(ca->certificate, client->certificate, "").ok());
  absl::Status s = VerifyCertificate(other->certificate, client->certificate, "");
  EXPECT_NE(s.message().find("does not chain"), std::string::npos) << s;
}

TEST(CertificateAuthorityTest, BadRequestsAreRefusedWithTheReason) {
  absl::StatusOr<PemPair> ca = CreateCertificateAuthority("ca", 30);
  absl::StatusOr<PemPair> other = CreateCertificateAuthority("other", 30);
  ASSERT_TRUE(ca.ok() && other.ok());
  absl::StatusOr<PemPair> bad_host = IssueCertificate(*ca, "x", CertificateRole::kServer, {"nas lan"}, 30);
  EXPECT_EQ(bad_host.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_host.status().message().find("'nas lan'"), std::string::npos);
  EXPECT_EQ(IssueCertificate(*ca, "x", CertificateRole::kServer, {}, 30).status().code(),
            absl::StatusCode::kInvalidArgument);
  PemPair mixed{ca->certificate, other->private_key};
  absl::StatusOr<PemPair> mismatch = IssueCertificate(mixed, "x", CertificateRole::kClient, {}, 30);
  EXPECT_NE(mismatch.status().message().find("does not belong"), std::string::npos) << mismatch.status();
  EXPECT_EQ(CreateCertificateAuthority("ca", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyCertificate("junk", ca->certificate, "").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quantfleet
