// The CPU backend's host KV tier: blocks copied to host slots and back read exactly as the
// originals (tests/testing/host_kv_checks.h; the CUDA backend's run is host_kv_cuda_test.cc).
#include <gtest/gtest.h>

#include "tests/testing/host_kv_checks.h"

namespace troupe {
namespace {

TEST(HostKvCopyTest, CpuRestoredBlocksReadAsTheOriginals) {
  testing::ExpectRestoredBlocksReadAsTheOriginals("cpu");
}

}  // namespace
}  // namespace troupe
