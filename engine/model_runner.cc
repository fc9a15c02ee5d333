#include "engine/model_runner.h"

#include <algorithm>

namespace troupe {

std::span<float> ModelRunner::Run(const StepPlan& plan) {
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

  logits_.resize(logit_rows_.size() * static_cast<size_t>(vocab_size_));
  hidden_.resize(logit_rows_.size() * static_cast<size_t>(dim_));
  ForwardBatch batch{.tokens = tokens_,
                     .positions = positions_,
                     .token_seq = token_seq_,
                     .slots = slots_,
                     .block_tables = block_tables_,
                     .n_seqs = static_cast<int>(plan.seqs.size()),
                     .max_blocks_per_seq = static_cast<int>(max_blocks),
                     .logit_rows = logit_rows_,
                     .hidden_out = hidden_.data()};
  backend_.Forward(batch, logits_.data());
  return logits_;
}

}  // namespace troupe
