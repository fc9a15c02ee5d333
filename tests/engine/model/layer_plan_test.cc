// The layer plan (engine/model/layer_plan.h): the Llama step list derived from a config, the
// architectures without a plan, and RunLayerPlan's dispatch onto a backend's ops.
#include "engine/model/layer_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/assertions.h"

namespace troupe {
namespace {

using ::troupe::testing::Contains;

ModelConfig LlamaConfig(int num_layers) {
  ModelConfig c;
  c.architecture = "llama";
  c.num_layers = num_layers;
  return c;
}

// "op@layer" per step, with "+" when the step adds delta first and "!" when it runs on the
// logit rows only.
std::vector<std::string> Describe(const LayerPlan& plan) {
  std::vector<std::string> out;
  for (const PlanStep& s : plan.steps) {
    out.push_back(absl::StrCat(std::string(StepOpName(s.op)), "@", s.layer, s.add_delta ? "+" : "",
                               s.logit_rows_only ? "!" : ""));
  }
  return out;
}

TEST(LayerPlanTest, LlamaPlanIsTheLlamaLayerSequence) {
  absl::StatusOr<LayerPlan> plan = BuildLayerPlan(LlamaConfig(2));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::vector<std::string> want = {
      "embed@-1",
      "attention_norm@0", "qkv_projection@0", "rope_kv_write@0", "attention@0",
      "output_projection@0", "feed_forward_norm@0+", "gate_up_projection@0", "silu_mul@0",
      "down_projection@0",
      "attention_norm@1+", "qkv_projection@1", "rope_kv_write@1", "attention@1",
      "output_projection@1", "feed_forward_norm@1+", "gate_up_projection@1", "silu_mul@1",
      "down_projection@1",
      "output_norm@-1+!", "lm_head@-1!"};
  EXPECT_EQ(Describe(*plan), want);
}

TEST(LayerPlanTest, StepCountGrowsByNinePerLayer) {
  for (int layers : {1, 3, 30}) {
    absl::StatusOr<LayerPlan> plan = BuildLayerPlan(LlamaConfig(layers));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->steps.size(), 1u + 9u * layers + 2u) << layers << " layers";
    EXPECT_EQ(plan->steps.back().op, StepOp::kLmHead);
    EXPECT_EQ(plan->steps[plan->steps.size() - 2].op, StepOp::kOutputNorm);
  }
}

TEST(LayerPlanTest, HandBuiltConfigWithoutArchitectureGetsTheLlamaPlan) {
  ModelConfig c = LlamaConfig(2);
  c.architecture.clear();
  absl::StatusOr<LayerPlan> plan = BuildLayerPlan(c);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Describe(*plan), Describe(*BuildLayerPlan(LlamaConfig(2))));
}

TEST(LayerPlanTest, ArchitectureWithoutAPlanIsInvalidArgument) {
  ModelConfig c = LlamaConfig(2);
  c.architecture = "gpt2";
  absl::StatusOr<LayerPlan> plan = BuildLayerPlan(c);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(plan.status().message(), "'gpt2'"));
}

// Records each call as "Method@layer".
class RecordingOps final : public LayerOps {
 public:
  std::vector<std::string> calls;
  void Embed(const PlanStep& s) override { Add("Embed", s); }
  void AttentionNorm(const PlanStep& s) override { Add("AttentionNorm", s); }
  void QkvProjection(const PlanStep& s) override { Add("QkvProjection", s); }
  void RopeKvWrite(const PlanStep& s) override { Add("RopeKvWrite", s); }
  void Attention(const PlanStep& s) override { Add("Attention", s); }
  void OutputProjection(const PlanStep& s) override { Add("OutputProjection", s); }
  void FeedForwardNorm(const PlanStep& s) override { Add("FeedForwardNorm", s); }
  void GateUpProjection(const PlanStep& s) override { Add("GateUpProjection", s); }
  void SiluMul(const PlanStep& s) override { Add("SiluMul", s); }
  void DownProjection(const PlanStep& s) override { Add("DownProjection", s); }
  void OutputNorm(const PlanStep& s) override { Add("OutputNorm", s); }
  void LmHead(const PlanStep& s) override { Add("LmHead", s); }

 private:
  void Add(const char* method, const PlanStep& s) {
    calls.push_back(absl::StrCat(method, "@", s.layer));
  }
};

TEST(LayerPlanTest, RunCallsEachStepsOpInOrder) {
  absl::StatusOr<LayerPlan> plan = BuildLayerPlan(LlamaConfig(1));
  ASSERT_TRUE(plan.ok()) << plan.status();
  RecordingOps ops;
  RunLayerPlan(*plan, /*has_logit_rows=*/true, ops);
  const std::vector<std::string> want = {
      "Embed@-1", "AttentionNorm@0", "QkvProjection@0", "RopeKvWrite@0", "Attention@0",
      "OutputProjection@0", "FeedForwardNorm@0", "GateUpProjection@0", "SiluMul@0",
      "DownProjection@0", "OutputNorm@-1", "LmHead@-1"};
  EXPECT_EQ(ops.calls, want);
}

TEST(LayerPlanTest, RunLeavesOutTheHeadWithoutLogitRows) {
  absl::StatusOr<LayerPlan> plan = BuildLayerPlan(LlamaConfig(2));
  ASSERT_TRUE(plan.ok()) << plan.status();
  RecordingOps ops;
  RunLayerPlan(*plan, /*has_logit_rows=*/false, ops);
  ASSERT_EQ(ops.calls.size(), 1u + 9u * 2u);
  EXPECT_EQ(ops.calls.back(), "DownProjection@1");
  for (const std::string& call : ops.calls) {
    EXPECT_NE(call.rfind("OutputNorm", 0), 0u) << call;
    EXPECT_NE(call.rfind("LmHead", 0), 0u) << call;
  }
}

TEST(LayerPlanTest, RunsAHandWrittenPlanAsGiven) {
  // The dispatch follows the step list, not a built-in order: a plan with the feed-forward block
  // before attention (as a parallel-block architecture might reorder it) runs in that order.
  LayerPlan plan;
  plan.steps = {{.op = StepOp::kEmbed},
                {.op = StepOp::kFeedForwardNorm, .layer = 4},
                {.op = StepOp::kAttentionNorm, .layer = 2, .add_delta = true},
                {.op = StepOp::kLmHead, .logit_rows_only = true}};
  RecordingOps ops;
  RunLayerPlan(plan, /*has_logit_rows=*/true, ops);
  const std::vector<std::string> want = {"Embed@-1", "FeedForwardNorm@4", "AttentionNorm@2",
                                         "LmHead@-1"};
  EXPECT_EQ(ops.calls, want);
}

}  // namespace
}  // namespace troupe
