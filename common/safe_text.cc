#include "common/safe_text.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace vigil {
namespace {

// Length of the valid UTF-8 sequence starting at s[i] that encodes a
// printable character, or 0 if s[i] must be escaped.
size_t SafeSequence(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c >= 0x20 && c < 0x7f) return 1;
  if (c < 0x80) return 0;  // C0 controls and DEL
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;  // a continuation byte alone, overlong leads, or > U+10FFFF
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  // Overlong forms, UTF-16 surrogates and beyond U+10FFFF are invalid.
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  // C1 controls (U+0080..U+009F) can act as terminal escapes too.
  if (cp >= 0x80 && cp <= 0x9f) return 0;
  return n;
}

}  // namespace

bool IsSafeText(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = SafeSequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SafeText(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = SafeSequence(s, i);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<uint8_t>(s[i]));
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string XmlEscape(absl::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

}  // namespace vigil
