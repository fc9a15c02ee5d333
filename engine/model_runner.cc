#include "engine/model_runner.h"

#include <algorithm>

#include "common/check.h"
#include "common/thread_owner.h"

namespace troupe {

std::span<float> ModelRunner::Run(const StepPlan& plan, std::span<const RowSampling> sampling,
                                  bool want_hidden) {
  TROUPE_DCHECK_ON_ENGINE_THREAD();
  tokens_.clear();
  positions_.clear();
  token_seq_.clear();
  slots_.clear();
  logit_rows_.clear();
  size_t max_blocks = 1;
  for (const ScheduledSeq& s : plan.seqs) max_blocks = std::max(max_blocks, s.seq->blocks.size());
  block_tables_.assign(plan.seqs.size() * max_blocks, -1);

  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const Sequence& seq = *plan.seqs[i].seq;
    std::copy(seq.blocks.begin(), seq.blocks.end(), block_tables_.begin() + i * max_blocks);
    for (int j = 0; j < plan.seqs[i].num_tokens; ++j) {
      const int pos = seq.num_computed + j;
      tokens_.push_back(seq.tokens[pos]);
      positions_.push_back(pos);
      token_seq_.push_back(static_cast<int32_t>(i));
      slots_.push_back(static_cast<int64_t>(seq.blocks[pos / block_size_]) * block_size_ +
                       pos % block_size_);
    }
    if (plan.seqs[i].needs_logits) logit_rows_.push_back(static_cast<int32_t>(tokens_.size()) - 1);
  }

  const bool on_device = !sampling.empty();
  TROUPE_CHECK(!on_device || sampling.size() == logit_rows_.size());
  logits_.resize(on_device ? 0 : logit_rows_.size() * static_cast<size_t>(vocab_size_));
  hidden_.resize(want_hidden ? logit_rows_.size() * static_cast<size_t>(dim_) : 0);
  sampled_ids_.resize(on_device ? logit_rows_.size() : 0);
  ForwardBatch batch{.tokens = tokens_,
                     .positions = positions_,
                     .token_seq = token_seq_,
                     .slots = slots_,
                     .block_tables = block_tables_,
                     .n_seqs = static_cast<int>(plan.seqs.size()),
                     .max_blocks_per_seq = static_cast<int>(max_blocks),
                     .logit_rows = logit_rows_,
                     .hidden_out = want_hidden ? hidden_.data() : nullptr,
                     .sampling = sampling,
                     .sampled_ids = on_device ? sampled_ids_.data() : nullptr};
  backend_.Forward(batch, on_device ? nullptr : logits_.data());
  return logits_;
}

}  // namespace troupe
