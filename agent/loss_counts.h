// A capability's loss counters: a plain struct of uint64 fields that names
// each one once, in its kCauses table. Summing intervals and the (cause,
// count) pairs of vigil_lost_events_total and GetStatus (LossesToProto
// matches the same names to the proto loss message's fields) all come from
// that one table, so a new counter cannot be summed but left unreported.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace vigil {

template <typename T>
struct LossCause {
  const char* name;  // the cause label, and the proto field of that name
  uint64_t T::*count;
};

// Inside a LossCounts struct, names a field as its own cause:
// `static constexpr LossCause<Self> kCauses[] = {VIGIL_LOSS_CAUSE(map_full)};`
#define VIGIL_LOSS_CAUSE(field) \
  LossCause<Self> { #field, &Self::field }

// CRTP base: T derives from LossCounts<T> and defines
// `static constexpr LossCause<Self> kCauses[]` listing every field.
template <typename T>
struct LossCounts {
  using Self = T;

  T& operator+=(const T& o) {
    static_assert(sizeof(T) == std::size(T::kCauses) * sizeof(uint64_t),
                  "every counter of a LossCounts struct is listed in its kCauses");
    T& self = static_cast<T&>(*this);
    for (const LossCause<T>& c : T::kCauses) self.*c.count += o.*c.count;
    return self;
  }

  // Every cause with its count, then `more` (counts kept elsewhere, such
  // as the store's window_cap).
  std::vector<std::pair<std::string, uint64_t>> Named(
      std::initializer_list<std::pair<const char*, uint64_t>> more = {}) const {
    const T& self = static_cast<const T&>(*this);
    std::vector<std::pair<std::string, uint64_t>> out;
    out.reserve(std::size(T::kCauses) + more.size());
    for (const LossCause<T>& c : T::kCauses) out.emplace_back(c.name, self.*c.count);
    for (const auto& [name, count] : more) out.emplace_back(name, count);
    return out;
  }
};

}  // namespace vigil
