#include "client/certs_command.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/certificate_authority.h"
#include "client/command_line.h"
#include "core/io/atomic_file.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

constexpr char kUsage[] = R"(usage: quantfleet certs init DIR --coordinator-host NAME [--coordinator-host NAME ...]
                             [--worker NAME ...] [--client NAME] [--port N]
                             [--install-dir PATH] [--days N] [--force] [--json]

Creates what a cluster needs to talk over mutual TLS with tokens, in DIR:
  ca.pem, ca.key                     a private certificate authority (EC P-256);
                                     keep ca.key offline once you are done
  coordinator.pem, coordinator.key   the coordinator's certificate, naming every
                                     --coordinator-host (DNS names or IP addresses)
  worker-NAME.pem, worker-NAME.key   one per --worker (default: one named "worker")
  client.pem, client.key             for the quantfleet command (--client sets its name)
  client.token, worker.token         random tokens for clients and for workers
  coordinator.toml, worker-NAME.toml ready config files (quantfleet-coordinator --config ...)
Keys and tokens are written with mode 0600. Then it prints what to copy to
each machine. The config files refer to the files in --install-dir
(default /etc/quantfleet), where they go on each machine.

Example, a NAS running the coordinator and two GPU rigs:
  quantfleet certs init ./lab --coordinator-host nas.lan --coordinator-host 192.168.1.10 \
      --worker rig1 --worker rig2

options:
  --coordinator-host NAME  how workers and clients reach the coordinator (repeatable)
  --worker NAME            a worker to create a certificate for (repeatable)
  --client NAME            the client certificate's name (default: client)
  --port N                 the coordinator's gRPC port (default: 7070)
  --install-dir PATH       where the files live on each machine (default: /etc/quantfleet)
  --days N                 validity of the certificates (default: 3650)
  --force                  overwrite files already in DIR
  --json                   print the created files and settings as JSON
)";

struct Request {
  std::string dir;
  std::vector<std::string> hosts;
  std::vector<std::string> workers;
  std::string client = "client";
  int port = 7070;
  std::string install_dir = "/etc/quantfleet";
  int days = 3650;
  bool force = false;
  bool json = false;
};

absl::StatusOr<Request> Parse(const std::vector<std::string>& args) {
  Request r;
  std::vector<std::string> dir;
  CommandLine line("quantfleet certs init");
  line.List({"--coordinator-host"}, &r.hosts, "a host name or address")
      .List({"--worker"}, &r.workers, "a worker name")
      .Text({"--client"}, &r.client, "a client name")
      .Text({"--install-dir"}, &r.install_dir, "a directory")
      .Int({"--port"}, &r.port, 1, "a positive number")
      .Int({"--days"}, &r.days, 1, "a positive number")
      .Flag({"--force"}, &r.force)
      .Flag({"--json"}, &r.json)
      .Positional(&dir, 1);
  QF_RETURN_IF_ERROR(line.Parse(args).status());
  if (!dir.empty()) r.dir = dir[0];
  if (r.dir.empty()) return absl::InvalidArgumentError("give the directory to create the files in (DIR)");
  if (r.hosts.empty()) {
    return absl::InvalidArgumentError(
        "give --coordinator-host: the name or address workers and clients use to reach the coordinator");
  }
  if (r.port > 65535) return absl::InvalidArgumentError("--port must be at most 65535");
  if (r.workers.empty()) r.workers.push_back("worker");
  for (const std::string& name : r.workers) {
    if (name.empty() || name.find_first_of("/\\ \t\n\"") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("--worker '%s': a name without spaces, quotes or '/'", name));
    }
  }
  return r;
}

std::string RandomToken() {
  unsigned char bytes[32];
  RAND_bytes(bytes, sizeof(bytes));
  std::string hex;
  for (unsigned char b : bytes) absl::StrAppendFormat(&hex, "%02x", b);
  return hex + "\n";
}

std::string Toml(const std::vector<std::pair<std::string, std::string>>& settings, const std::string& indent = "") {
  std::string out;
  for (const auto& [key, value] : settings) absl::StrAppendFormat(&out, "%s%s = \"%s\"\n", indent, key, value);
  return out;
}

int Fail(const absl::Status& s) {
  absl::FPrintF(stderr, "quantfleet certs: %s\n", s.message());
  return 1;
}

int RunInit(const Request& r) {
  const std::string at = r.install_dir + "/";
  const std::string address = absl::StrFormat("%s:%d", r.hosts.front(), r.port);
  // Every file, in the order written; nothing is written until all exist.
  std::vector<std::tuple<std::string, std::string, mode_t>> files;

  absl::StatusOr<PemPair> ca = CreateCertificateAuthority("quantfleet CA", r.days);
  if (!ca.ok()) return Fail(ca.status());
  files.emplace_back("ca.pem", ca->certificate, 0644);
  files.emplace_back("ca.key", ca->private_key, 0600);
  absl::StatusOr<PemPair> server =
      IssueCertificate(*ca, "quantfleet coordinator", CertificateRole::kServer, r.hosts, r.days);
  if (!server.ok()) return Fail(server.status());
  files.emplace_back("coordinator.pem", server->certificate, 0644);
  files.emplace_back("coordinator.key", server->private_key, 0600);
  files.emplace_back("client.token", RandomToken(), 0600);
  files.emplace_back("worker.token", RandomToken(), 0600);
  const std::vector<std::pair<std::string, std::string>> coordinator_settings = {
      {"listen", absl::StrFormat("0.0.0.0:%d", r.port)},
      {"tls-cert", at + "coordinator.pem"},
      {"tls-key", at + "coordinator.key"},
      {"tls-client-ca", at + "ca.pem"},
      {"token-file", at + "client.token"},
      {"worker-token-file", at + "worker.token"},
  };
  files.emplace_back("coordinator.toml",
                     "# quantfleet-coordinator --config " + at + "coordinator.toml (add state-dir and allow-root)\n" +
                         Toml(coordinator_settings),
                     0644);
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> worker_settings;
  for (const std::string& name : r.workers) {
    absl::StatusOr<PemPair> cert = IssueCertificate(*ca, name, CertificateRole::kClient, {}, r.days);
    if (!cert.ok()) return Fail(cert.status());
    files.emplace_back("worker-" + name + ".pem", cert->certificate, 0644);
    files.emplace_back("worker-" + name + ".key", cert->private_key, 0600);
    worker_settings[name] = {{"coordinator", address},
                             {"name", name},
                             {"tls-ca", at + "ca.pem"},
                             {"tls-cert", at + "worker-" + name + ".pem"},
                             {"tls-key", at + "worker-" + name + ".key"},
                             {"token-file", at + "worker.token"}};
    files.emplace_back(
        "worker-" + name + ".toml",
        "# quantfleet-worker --config " + at + "worker-" + name + ".toml\n" + Toml(worker_settings[name]), 0644);
  }
  absl::StatusOr<PemPair> client = IssueCertificate(*ca, r.client, CertificateRole::kClient, {}, r.days);
  if (!client.ok()) return Fail(client.status());
  files.emplace_back("client.pem", client->certificate, 0644);
  files.emplace_back("client.key", client->private_key, 0600);

  std::error_code ec;
  fs::create_directories(r.dir, ec);
  if (ec) return Fail(absl::InvalidArgumentError(absl::StrFormat("%s: cannot create it: %s", r.dir, ec.message())));
  ::chmod(r.dir.c_str(), 0700);
  if (!r.force) {
    for (const auto& [name, content, mode] : files) {
      if (fs::exists(fs::path(r.dir) / name)) {
        return Fail(absl::AlreadyExistsError(
            absl::StrFormat("%s already exists; choose an empty directory or pass --force to replace every file",
                            (fs::path(r.dir) / name).string())));
      }
    }
  }
  for (const auto& [name, content, mode] : files) {
    const std::string path = (fs::path(r.dir) / name).string();
    absl::StatusOr<std::unique_ptr<AtomicFile>> out = AtomicFile::Create(path, /*overwrite=*/true, mode);
    absl::Status s = out.ok() ? (*out)->PWrite(content.data(), content.size(), 0) : out.status();
    if (s.ok()) s = (*out)->Commit();
    if (!s.ok()) return Fail(s);
  }

  const std::string local = fs::absolute(r.dir).lexically_normal().string();
  const std::vector<std::pair<std::string, std::string>> client_env = {
      {"QUANTFLEET_COORDINATOR", address},
      {"QUANTFLEET_TLS_CA", local + "/ca.pem"},
      {"QUANTFLEET_TLS_CERT", local + "/client.pem"},
      {"QUANTFLEET_TLS_KEY", local + "/client.key"},
      {"QUANTFLEET_TOKEN_FILE", local + "/client.token"},
  };
  if (r.json) {
    nlohmann::json j;
    j["dir"] = local;
    for (const auto& [name, content, mode] : files) j["files"].push_back(name);
    for (const auto& [k, v] : coordinator_settings) j["coordinator"][k] = v;
    for (const auto& [name, settings] : worker_settings) {
      for (const auto& [k, v] : settings) j["workers"][name][k] = v;
    }
    for (const auto& [k, v] : client_env) j["client_environment"][k] = v;
    absl::PrintF("%s\n", j.dump(2));
    return 0;
  }
  absl::PrintF("Created in %s: %d files (keys and tokens with mode 0600).\n\n", local, files.size());
  absl::PrintF(
      "On the coordinator, copy ca.pem coordinator.pem coordinator.key client.token worker.token\n"
      "coordinator.toml to %s, add state-dir and allow-root to coordinator.toml, and run\n"
      "  quantfleet-coordinator --config %scoordinator.toml\n  which holds:\n%s\n",
      r.install_dir, at, Toml(coordinator_settings, "    "));
  for (const auto& [name, settings] : worker_settings) {
    absl::PrintF(
        "On worker %s, copy ca.pem worker-%s.pem worker-%s.key worker.token worker-%s.toml to %s, and run\n"
        "  quantfleet-worker --config %sworker-%s.toml\n  which holds:\n%s\n",
        name, name, name, name, r.install_dir, at, name, Toml(settings, "    "));
  }
  absl::PrintF("For the quantfleet command on this machine:\n");
  for (const auto& [k, v] : client_env) absl::PrintF("  export %s=%s\n", k, v);
  absl::PrintF(
      "\nMake the key files readable by the user each daemon runs as (chown quantfleet), and keep\n"
      "ca.key off the network: it can sign certificates the cluster trusts.\n");
  return 0;
}

}  // namespace

int RunCertsCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    absl::PrintF("%s", kUsage);
    return args.empty() ? 1 : 0;
  }
  if (args[0] != "init") {
    absl::FPrintF(stderr, "quantfleet certs: unknown subcommand '%s'\n\n%s", args[0], kUsage);
    return 1;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const std::string& a : rest) {
    if (a == "--help" || a == "-h") {
      absl::PrintF("%s", kUsage);
      return 0;
    }
  }
  absl::StatusOr<Request> request = Parse(rest);
  if (!request.ok()) return Fail(request.status());
  return RunInit(*request);
}

}  // namespace quantfleet
