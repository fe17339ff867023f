#include "core/ops/prometheus_text.h"

#include <gtest/gtest.h>

#include <limits>

namespace quantfleet {
namespace {

TEST(PrometheusTextTest, FamiliesSamplesAndEscaping) {
  PrometheusText page;
  page.Family("quantfleet_jobs", "gauge", "Jobs by state.\nOne line");
  page.Sample({{"state", "running"}}, 2);
  page.Sample({{"state", "a\"b\\c\nd"}}, 0.5);
  page.Family("quantfleet_up", "gauge", "Up.");
  page.Sample(1);
  page.Sample({{"x", "y"}}, std::numeric_limits<double>::infinity());
  EXPECT_EQ(page.text(),
            "# HELP quantfleet_jobs Jobs by state.\\nOne line\n"
            "# TYPE quantfleet_jobs gauge\n"
            "quantfleet_jobs{state=\"running\"} 2\n"
            "quantfleet_jobs{state=\"a\\\"b\\\\c\\nd\"} 0.5\n"
            "# HELP quantfleet_up Up.\n"
            "# TYPE quantfleet_up gauge\n"
            "quantfleet_up 1\n"
            "quantfleet_up{x=\"y\"} +Inf\n");
}

TEST(PrometheusTextTest, LargeCountersStayExact) {
  PrometheusText page;
  page.Family("b", "counter", "bytes");
  page.Sample(123456789012.0);
  EXPECT_NE(page.text().find("b 123456789012\n"), std::string::npos) << page.text();
}

}  // namespace
}  // namespace quantfleet
