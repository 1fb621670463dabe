// vigil top's screen as text, shared by the interactive view (ncurses draws
// these lines) and --once (prints them): pure, so unit tests check the
// layout, the numbers and the escaping without a terminal or an agent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/v1/vigil.pb.h"

namespace vigil::cli {

// A sortable column: its header, the key that sorts by it, the sort.
struct TopColumn {
  const char* header;
  char key;
  v1::TopSort sort;
};
// In screen order (the sort keys of `vigil top`'s help come from here).
const std::vector<TopColumn>& TopColumns();
// The column header a sort orders by ("CPU%" for TOP_SORT_CPU).
const char* TopSortName(v1::TopSort sort);

struct TopScreenOptions {
  int width = 80;        // characters per line (at least 40 are used)
  std::string agent;     // shown in the title
  std::string clock;     // "HH:MM:SS", shown in the title
  std::string state;     // sort, filters, keys: one line, may be empty
  bool threads = false;  // also a row per thread, under its process
};

// One screen: lines above the table, the table's header, and its rows
// (each with the pid and tid it shows: tid 0 for a process row).
struct TopScreen {
  std::vector<std::string> header;
  std::string columns;
  std::vector<std::string> rows;
  struct Id {
    uint32_t pid = 0;
    uint32_t tid = 0;
  };
  std::vector<Id> ids;
};

TopScreen RenderTop(const v1::TopResponse& r, const TopScreenOptions& o);

// Every line of the screen, "\n"-terminated (vigil top --once).
std::string TopScreenText(const TopScreen& s);

// "12.3M"-style sizes and rates that fit their columns.
std::string CompactBytes(double bytes);
std::string CompactRate(double per_s);

}  // namespace vigil::cli
