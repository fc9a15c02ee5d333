// A fixed-bucket histogram one thread writes and any thread snapshots, without locks: the
// engine thread observes per-step values, the metrics exporter reads them on each scrape.
// A snapshot taken during an Observe may see the bucket count and the sum from different
// moments; Prometheus histograms tolerate that.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace troupe {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // ascending; +Inf is implied after the last
  std::vector<uint64_t> counts;      // per bucket (not cumulative), upper_bounds.size() + 1
  double sum = 0.0;
};

class AtomicHistogram {
 public:
  explicit AtomicHistogram(std::vector<double> upper_bounds)
      : upper_bounds_(std::move(upper_bounds)),
        counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1)) {}

  // Single writer.
  void Observe(double value) {
    size_t i = 0;
    while (i < upper_bounds_.size() && value > upper_bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
  }

  HistogramSnapshot Snapshot() const {
    HistogramSnapshot s{.upper_bounds = upper_bounds_, .counts = {}, .sum = sum_.load(std::memory_order_relaxed)};
    s.counts.reserve(upper_bounds_.size() + 1);
    for (size_t i = 0; i <= upper_bounds_.size(); ++i) s.counts.push_back(counts_[i].load(std::memory_order_relaxed));
    return s;
  }

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace troupe
