// Random identifiers for records clients name by id (sessions, characters).
// Thread-safe.
#pragma once

#include <string>

namespace troupe {

// 32 lowercase hex digits: 128 bits from the kernel's CSPRNG (std::random_device on Linux), so
// an id cannot be guessed from another.
std::string NewRandomId();

}  // namespace troupe
