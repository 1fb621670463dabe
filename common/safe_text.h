// Text that other users control (thread names, command lines, symbol names,
// file paths) on its way out of the agent: always valid UTF-8, with control
// characters escaped visibly, so no name can break a proto3 string (a client
// refuses a response with invalid UTF-8 whole), a Prometheus scrape, or a
// terminal (escape sequences).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace vigil {

// Valid UTF-8 passes through; every byte of an invalid sequence and every
// C0 control character and DEL becomes "\xNN".
std::string SafeText(absl::string_view s);

// `s` inert as XML/HTML text or attribute value: & < > " ' escaped.
std::string XmlEscape(absl::string_view s);

// True if SafeText(s) == s (the common case; lets callers skip the copy).
bool IsSafeText(absl::string_view s);

}  // namespace vigil
