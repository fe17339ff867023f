// A small private certificate authority for a home-lab cluster, built on
// OpenSSL: an ECDSA P-256 CA, then server and client certificates it signs
// (PEM). TLS in quantfleet checks the coordinator's certificate against
// this CA, and with mTLS the coordinator checks workers' and clients'.
//
// Thread-safety: functions are independent and may run concurrently.
#ifndef QUANTFLEET_CLIENT_CERTIFICATE_AUTHORITY_H_
#define QUANTFLEET_CLIENT_CERTIFICATE_AUTHORITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

// A certificate and its private key, both PEM.
struct PemPair {
  std::string certificate;
  std::string private_key;
};

enum class CertificateRole {
  kServer,  // extendedKeyUsage serverAuth, subjectAltName from `hosts`
  kClient,  // extendedKeyUsage clientAuth (workers and the quantfleet command)
};

// A self-signed CA certificate named `common_name`, valid `days` days.
absl::StatusOr<PemPair> CreateCertificateAuthority(const std::string& common_name, int days);

// A certificate for `common_name` signed by `ca`. For kServer, `hosts` are
// DNS names or IP addresses (each becomes a subjectAltName entry); at least
// one is required. INVALID_ARGUMENT names a malformed host or a bad CA.
absl::StatusOr<PemPair> IssueCertificate(const PemPair& ca, const std::string& common_name, CertificateRole role,
                                         const std::vector<std::string>& hosts, int days);

// True when `certificate` (PEM) chains to `ca_certificate` and, for a
// server, names `host`; otherwise the reason. For tests and `certs check`.
absl::Status VerifyCertificate(const std::string& ca_certificate, const std::string& certificate,
                               const std::string& host);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CERTIFICATE_AUTHORITY_H_
