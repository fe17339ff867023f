// Running a cluster the way a home lab does: metrics and the status page
// after a real job (the page rendered by a real headless Chromium), and a
// cluster set up only from what `quantfleet certs init` writes (mutual TLS,
// tokens, --config files). Real processes on loopback; every wait bounded.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

std::string HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result r = client.Get(path.c_str());
  if (!r || r->status != 200) return "";
  return r->body;
}

// Sums the samples of `name` (any labels) in a Prometheus text page; -1
// when there are none.
double MetricSum(const std::string& page, const std::string& name) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    const absl::string_view key = line.substr(0, space);
    if (key != name && !(absl::StartsWith(key, name + "{"))) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : -1;
}

int64_t JsonInt(const nlohmann::json& j, const std::string& key) {
  if (!j.contains(key)) return -1;
  int64_t n = -1;
  if (j[key].is_string()) return absl::SimpleAtoi(j[key].get<std::string>(), &n) ? n : -1;
  return j[key].get<int64_t>();
}

class OpsTest : public ClusterTest {};

TEST_F(OpsTest, MetricsMatchTheJobAndTheStatusPageShowsItFinished) {
  const int metrics_port = FreeLoopbackPort();
  StartCoordinator(2, {"--metrics-listen", absl::StrFormat("127.0.0.1:%d", metrics_port)});
  std::vector<int> worker_ports;
  for (const std::string name : {"rig1", "rig2"}) {
    worker_ports.push_back(FreeLoopbackPort());
    StartWorker(name, {"--metrics-listen", absl::StrFormat("127.0.0.1:%d", worker_ports.back())});
  }
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
  const nlohmann::json status = Status(job);
  const int64_t tasks = JsonInt(status, "tasksTotal");
  const int64_t bytes = JsonInt(status, "bytesTotal");
  ASSERT_GT(tasks, 1);
  ASSERT_GT(bytes, 0);

  const std::string coordinator = HttpGet(metrics_port, "/metrics");
  ASSERT_FALSE(coordinator.empty());
  EXPECT_EQ(MetricSum(coordinator, "quantfleet_tasks_completed_total"), tasks) << coordinator;
  EXPECT_EQ(MetricSum(coordinator, "quantfleet_result_bytes_received_total"), bytes) << coordinator;
  EXPECT_EQ(MetricSum(coordinator, "quantfleet_worker_tasks_done_total"), tasks) << coordinator;
  EXPECT_EQ(MetricSum(coordinator, "quantfleet_worker_result_bytes_total"), bytes) << coordinator;
  EXPECT_NE(coordinator.find("quantfleet_jobs{state=\"succeeded\"} 1\n"), std::string::npos) << coordinator;
  EXPECT_NE(coordinator.find("quantfleet_worker_up{worker=\"rig1\""), std::string::npos) << coordinator;
  EXPECT_EQ(MetricSum(coordinator, "quantfleet_task_failures_total"), 0);

  // What the workers say they did adds up to what the coordinator saw.
  double uploaded = 0, downloaded = 0, done = 0;
  for (int port : worker_ports) {
    const std::string page = HttpGet(port, "/metrics");
    ASSERT_FALSE(page.empty()) << "worker metrics on port " << port;
    uploaded += MetricSum(page, "quantfleet_worker_result_bytes_uploaded_total");
    downloaded += MetricSum(page, "quantfleet_worker_source_bytes_downloaded_total");
    done += MetricSum(page, "quantfleet_worker_tasks_done_total");
  }
  EXPECT_EQ(uploaded, bytes);
  EXPECT_EQ(done, tasks);
  EXPECT_EQ(downloaded, MetricSum(coordinator, "quantfleet_source_bytes_sent_total"));

  // The page itself has no external assets: no URL with a scheme at all.
  const std::string html = HttpGet(metrics_port, "/");
  ASSERT_FALSE(html.empty());
  EXPECT_FALSE(std::regex_search(html, std::regex(R"((src|href)\s*=|https?://|url\()")))
      << "the status page must work offline";

  // A real browser runs its script against /api/status and shows the job
  // finished, at 100%, and both workers alive.
  ProcessResult dom = RenderedDom(absl::StrFormat("http://127.0.0.1:%d/", metrics_port), dir_ + "/chromium");
  ASSERT_EQ(dom.exit_code, 0) << "headless Chromium failed (is the chromium package installed?): " << dom.output;
  EXPECT_NE(dom.output.find("data-loaded=\"true\""), std::string::npos) << dom.output;
  std::smatch row;
  ASSERT_TRUE(std::regex_search(dom.output, row,
                                std::regex("<tr class=\"job state-succeeded\" data-job=\"" + job + "\">.*?</tr>")))
      << dom.output;
  EXPECT_NE(row.str().find("100.0%"), std::string::npos) << row.str();
  EXPECT_NE(row.str().find("Q4_K_M"), std::string::npos) << row.str();
  EXPECT_NE(row.str().find(Out("out.gguf")), std::string::npos) << row.str();
  for (const std::string name : {"rig1", "rig2"}) {
    EXPECT_TRUE(std::regex_search(dom.output, std::regex("data-worker=\"" + name + "\">.*?class=\"alive\">alive<")))
        << name << " missing or not alive in " << dom.output;
  }
}

TEST_F(OpsTest, CertsInitGivesAWorkingMutualTlsClusterFromItsConfigFiles) {
  const std::string lab = dir_ + "/lab";
  ProcessResult init =
      RunProcess({Bin("quantfleet"), "certs", "init", lab, "--coordinator-host", "127.0.0.1", "--coordinator-host",
                  "localhost", "--worker", "rig1", "--port", absl::StrCat(port_), "--install-dir", lab},
                 absl::Minutes(1));
  ASSERT_EQ(init.exit_code, 0) << init.output;
  EXPECT_NE(init.output.find("export QUANTFLEET_TLS_CA="), std::string::npos) << init.output;
  // A second run refuses to overwrite the CA.
  ProcessResult again =
      RunProcess({Bin("quantfleet"), "certs", "init", lab, "--coordinator-host", "127.0.0.1"}, absl::Minutes(1));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("ca.pem already exists"), std::string::npos) << again.output;

  // The generated config says listen = 0.0.0.0; the command line wins.
  StartCoordinator(2, {"--config", lab + "/coordinator.toml"});
  StartWorker("rig1", {"--config", lab + "/worker-rig1.toml"});
  // The client uses exactly the environment certs init printed.
  for (absl::string_view line : absl::StrSplit(init.output, '\n')) {
    if (!absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "export ")) continue;
    const std::string setting(absl::StripLeadingAsciiWhitespace(line).substr(7));
    const size_t eq = setting.find('=');
    ::setenv(setting.substr(0, eq).c_str(), setting.substr(eq + 1).c_str(), 1);
  }
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  for (const char* v : {"QUANTFLEET_COORDINATOR", "QUANTFLEET_TLS_CA", "QUANTFLEET_TLS_CERT", "QUANTFLEET_TLS_KEY",
                        "QUANTFLEET_TOKEN_FILE"}) {
    ::unsetenv(v);
  }
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log") << ReadText(dir_ + "/worker-rig1.log");
  ExpectSameBytes("out.gguf", "Q4_K_M", true);

  // Without a client certificate the coordinator refuses the caller (mTLS).
  cli_extra_ = {"--tls-ca", lab + "/ca.pem", "--token-file", lab + "/client.token"};
  ProcessResult no_cert = Cli({"jobs"});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert.output;
  EXPECT_NE(no_cert.output.find("--tls-cert and --tls-key"), std::string::npos) << no_cert.output;
}

TEST_F(OpsTest, ABadConfigFileIsNamedWithItsLine) {
  const std::string config = dir_ + "/coordinator.toml";
  std::ofstream(config) << "state-dir = \"" << dir_ << "/state\"\nlease-secnds = 3\n";
  ProcessResult r =
      RunProcess({Bin("quantfleet-coordinator"), "--config", config, "--allow-root", dir_}, absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(config + ": line 2: lease-secnds"), std::string::npos) << r.output;
  ProcessResult missing = RunProcess({Bin("quantfleet-worker"), "--config", dir_ + "/nope.toml"}, absl::Seconds(30));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.toml: cannot be read"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace quantfleet
