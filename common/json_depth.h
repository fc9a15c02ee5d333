// A check that runs before any JSON text is handed to nlohmann: nlohmann's copies and dump
// recurse once per level of nesting, so a hostile "[[[[..." of 120,000 levels overflows a
// worker's stack. Every parse of JSON in troupe, client-reachable or not, is preceded by this
// check and a size check. Pure function, safe from any thread.
#pragma once

#include <string_view>

namespace troupe {

// Nesting troupe accepts in any JSON it parses (cards, extensions, stored records, model
// configs): well beyond any real document's.
inline constexpr int kMaxJsonDepth = 64;

// Whether arrays and objects in JSON `text` nest at most `max_depth` deep. Brackets inside
// strings do not count. Linear in the text, no allocation; does not validate the JSON.
bool JsonWithinDepth(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace troupe
