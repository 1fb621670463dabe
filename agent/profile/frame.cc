#include "agent/profile/frame.h"

#include "absl/strings/str_format.h"

namespace vigil {

// Here rather than in symbolizer.cc: the merges (profile_aggregate.cc) name
// frames too, and tests/fuzz links them without the symbolizer's bcc.
namespace {
const std::string& Empty() {
  static const std::string* empty = new std::string();
  return *empty;
}
}  // namespace

Frame Frame::Of(std::string name, std::string module, uint64_t offset, bool kernel) {
  Frame f;
  f.symbol =
      std::make_shared<const FrameSymbol>(FrameSymbol{std::move(name), std::move(module), 0});
  f.offset = offset;
  f.kernel = kernel;
  return f;
}

const std::string& Frame::name() const { return symbol ? symbol->name : Empty(); }
const std::string& Frame::module() const { return symbol ? symbol->module : Empty(); }

std::string Frame::DisplayName() const {
  if (named()) return name();
  return absl::StrFormat("%s+0x%x", module(), offset);
}

}  // namespace vigil
