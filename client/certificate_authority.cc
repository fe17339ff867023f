#include "client/certificate_authority.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace quantfleet {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

// OpenSSL's most recent error, in words.
std::string OpensslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return absl::StrCat(what, ": ", text);
}

bool IsIpAddress(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  const bool ok = ip != nullptr;
  ASN1_OCTET_STRING_free(ip);
  return ok;
}

bool IsDnsName(const std::string& host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string ToPem(X509* cert) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ToPem(EVP_PKEY* key) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<Owned<X509>> ParseCertificate(const std::string& pem, const std::string& what) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError(OpensslError(what + " is not a PEM certificate"));
  return cert;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return absl::InvalidArgumentError(OpensslError("extension " + value));
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return absl::OkStatus();
}

// A certificate for `key`, named `common_name`, valid from an hour ago (for
// clocks a little behind) for `days` days, with a random 127-bit serial.
absl::StatusOr<Owned<X509>> NewCertificate(EVP_PKEY* key, const std::string& common_name, int days) {
  if (days < 1 || days > 36500) return absl::InvalidArgumentError("--days must be between 1 and 36500");
  Owned<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  Owned<BIGNUM> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("quantfleet"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  return cert;
}

absl::StatusOr<Owned<EVP_PKEY>> NewKey() {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError(OpensslError("generating an EC P-256 key"));
  return key;
}

}  // namespace

absl::StatusOr<PemPair> CreateCertificateAuthority(const std::string& common_name, int days) {
  absl::StatusOr<Owned<EVP_PKEY>> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<Owned<X509>> cert = NewCertificate(key->get(), common_name, days);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  X509_set_issuer_name(c, X509_get_subject_name(c));
  for (const auto& [nid, value] : {std::pair<int, const char*>{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                   {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                   {NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(c, c, nid, value); !s.ok()) return s;
  }
  if (X509_sign(c, key->get(), EVP_sha256()) == 0) return absl::InternalError(OpensslError("signing the CA"));
  return PemPair{ToPem(c), ToPem(key->get())};
}

absl::StatusOr<PemPair> IssueCertificate(const PemPair& ca, const std::string& common_name, CertificateRole role,
                                         const std::vector<std::string>& hosts, int days) {
  absl::StatusOr<Owned<X509>> ca_cert = ParseCertificate(ca.certificate, "the CA certificate");
  if (!ca_cert.ok()) return ca_cert.status();
  Owned<BIO> key_bio(BIO_new_mem_buf(ca.private_key.data(), static_cast<int>(ca.private_key.size())));
  Owned<EVP_PKEY> ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca_key) return absl::InvalidArgumentError(OpensslError("the CA key is not a PEM private key"));
  if (X509_check_private_key(ca_cert->get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CA key does not belong to the CA certificate");
  }

  std::vector<std::string> alt_names;
  for (const std::string& host : hosts) {
    if (IsIpAddress(host)) {
      alt_names.push_back("IP:" + host);
    } else if (IsDnsName(host)) {
      alt_names.push_back("DNS:" + host);
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("host '%s' is neither a DNS name nor an IP address", host));
    }
  }
  if (role == CertificateRole::kServer && alt_names.empty()) {
    return absl::InvalidArgumentError("a server certificate needs at least one host name or address");
  }

  absl::StatusOr<Owned<EVP_PKEY>> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<Owned<X509>> cert = NewCertificate(key->get(), common_name, days);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  X509_set_issuer_name(c, X509_get_subject_name(ca_cert->get()));
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, role == CertificateRole::kServer ? "serverAuth" : "clientAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  if (!alt_names.empty()) extensions.emplace_back(NID_subject_alt_name, absl::StrJoin(alt_names, ","));
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(c, ca_cert->get(), nid, value); !s.ok()) return s;
  }
  if (X509_sign(c, ca_key.get(), EVP_sha256()) == 0) {
    return absl::InternalError(OpensslError("signing the certificate"));
  }
  return PemPair{ToPem(c), ToPem(key->get())};
}

absl::Status VerifyCertificate(const std::string& ca_certificate, const std::string& certificate,
                               const std::string& host) {
  absl::StatusOr<Owned<X509>> ca = ParseCertificate(ca_certificate, "the CA certificate");
  if (!ca.ok()) return ca.status();
  absl::StatusOr<Owned<X509>> cert = ParseCertificate(certificate, "the certificate");
  if (!cert.ok()) return cert.status();
  Owned<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  Owned<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("the certificate does not chain to the CA: ",
                                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  if (!host.empty()) {
    const int match = IsIpAddress(host) ? X509_check_ip_asc(cert->get(), host.c_str(), 0)
                                        : X509_check_host(cert->get(), host.c_str(), host.size(), 0, nullptr);
    if (match != 1) return absl::InvalidArgumentError(absl::StrFormat("the certificate does not name '%s'", host));
  }
  return absl::OkStatus();
}

}  // namespace quantfleet
