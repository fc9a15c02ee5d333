#include "common/ids.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"

namespace troupe {

std::string NewRandomId() {
  std::random_device device;
  std::string id;
  id.reserve(32);
  for (int i = 0; i < 4; ++i) {
    absl::StrAppendFormat(&id, "%08x", static_cast<uint32_t>(device()));
  }
  return id;
}

}  // namespace troupe
