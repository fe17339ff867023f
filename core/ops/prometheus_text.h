// Builds a page of the Prometheus text exposition format (version 0.0.4):
// metric families with HELP and TYPE lines, then samples with labels.
//
// Thread-safety: not thread-safe; build one page per request.
#ifndef QUANTFLEET_CORE_OPS_PROMETHEUS_TEXT_H_
#define QUANTFLEET_CORE_OPS_PROMETHEUS_TEXT_H_

#include <string>
#include <utility>
#include <vector>

namespace quantfleet {

class PrometheusText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Starts a family; `type` is "counter" or "gauge". Samples that follow
  // belong to it.
  void Family(const std::string& name, const std::string& type, const std::string& help);
  // A family of one unlabelled sample.
  void Counter(const std::string& name, const std::string& help, double value) {
    Family(name, "counter", help);
    Sample(value);
  }
  // A sample of the current family.
  void Sample(const Labels& labels, double value);
  void Sample(double value) { Sample({}, value); }

  const std::string& text() const { return text_; }

 private:
  std::string family_;
  std::string text_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_OPS_PROMETHEUS_TEXT_H_
