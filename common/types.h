// Small value types shared by every layer.
#pragma once

#include <cstdint>

namespace troupe {

// A vocabulary index. The tokenizer produces them, the sampler picks them, the KV cache hashes
// them; negative values never name a token.
using TokenId = int32_t;

}  // namespace troupe
