#include "client/profile_export.h"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/format.h"
#include "common/pprof.h"
#include "common/safe_text.h"

namespace vigil::cli {

std::string ToFolded(const v1::ProfileResponse& r) {
  std::map<std::string, uint64_t> lines;
  std::vector<std::string> names;
  for (const v1::ProfileStack& s : r.stacks()) {
    names.clear();
    for (int i = s.frame_ids_size() - 1; i >= 0; --i) {
      std::string n = FrameName(r.frames(static_cast<int>(s.frame_ids(i))));
      // ';' separates frames and a trailing " N" is the count: keep both
      // unambiguous.
      std::replace(n.begin(), n.end(), ';', ':');
      names.push_back(std::move(n));
    }
    lines[absl::StrJoin(names, ";")] += s.samples();
  }
  std::string out;
  for (const auto& [stack, n] : lines) absl::StrAppend(&out, stack, " ", n, "\n");
  return out;
}

namespace {

struct Node {
  std::string name, module;
  bool kernel = false;
  uint64_t value = 0;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Node>> children;
};

constexpr int kWidth = 1200, kRowH = 17, kTop = 40;

// Emits one <g> per node: data-x (start, in samples), data-v (samples),
// data-d (depth). Root at the bottom, like Brendan Gregg's flame graphs.
// bytes_per_sample > 0 (a memory profile) adds each frame's bytes.
void Emit(const Node& n, uint64_t x, int depth, int max_depth, uint64_t total,
          uint64_t bytes_per_sample, std::string* out) {
  const double px = static_cast<double>(x) * kWidth / static_cast<double>(total);
  const double pw = static_cast<double>(n.value) * kWidth / static_cast<double>(total);
  const int y = kTop + (max_depth - depth) * kRowH;
  const double pct = 100.0 * static_cast<double>(n.value) / static_cast<double>(total);
  // Warm colors for user code, cooler for the kernel; hue varies by name.
  size_t h = std::hash<std::string>()(n.name);
  const int r = n.kernel ? 200 + static_cast<int>(h % 55) : 230 + static_cast<int>(h % 25);
  const int g =
      n.kernel ? 120 + static_cast<int>((h >> 8) % 60) : 90 + static_cast<int>((h >> 8) % 130);
  const int b =
      n.kernel ? 60 + static_cast<int>((h >> 16) % 40) : 20 + static_cast<int>((h >> 16) % 40);
  const std::string label = XmlEscape(n.name);
  std::string info = absl::StrFormat("%s (%s): %d samples, %.2f%%", n.name,
                                     n.module.empty() ? "all" : n.module, n.value, pct);
  if (bytes_per_sample > 0) {
    absl::StrAppend(&info, ", ", HumanBytes(n.value * bytes_per_sample), " touched");
  }
  info = XmlEscape(info);
  absl::StrAppend(
      out,
      absl::StrFormat(
          "<g class=\"f\" data-x=\"%d\" data-v=\"%d\" data-d=\"%d\" "
          "data-info=\"%s\"><title>%s</title>"
          "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" rx=\"2\" fill=\"rgb(%d,%d,%d)\"/>"
          "<text x=\"%.2f\" y=\"%d\">%s</text></g>\n",
          x, n.value, depth, info, info, px, y, std::max(pw - 0.5, 0.1), kRowH - 1, r, g, b, px + 3,
          y + kRowH - 5, label));
  uint64_t cx = x;
  for (const auto& [k, c] : n.children) {
    Emit(*c, cx, depth + 1, max_depth, total, bytes_per_sample, out);
    cx += c->value;
  }
}

int Depth(const Node& n) {
  int d = 0;
  for (const auto& [k, c] : n.children) d = std::max(d, Depth(*c) + 1);
  return d;
}

// Fits each label to its frame's width; zooms on click. Runs in both the SVG
// and the HTML page.
constexpr char kScript[] = R"JS(
(function () {
  var W = 1200, frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));
  var status = document.getElementById('status');
  function fit(g) {
    var r = g.querySelector('rect'), t = g.querySelector('text');
    var full = g.querySelector('title').textContent.replace(/ \([^()]*\): \d+ samples.*$/, '');
    var w = parseFloat(r.getAttribute('width')), n = Math.floor((w - 6) / 7);
    t.textContent = n < 3 ? '' : (full.length <= n ? full : full.slice(0, n - 2) + '..');
  }
  function zoom(x0, v, d0) {
    frames.forEach(function (g) {
      var x = +g.dataset.x, gv = +g.dataset.v, d = +g.dataset.d;
      var inside = x >= x0 && x + gv <= x0 + v && d >= d0;
      var below = d < d0 && x <= x0 && x + gv >= x0 + v;
      g.style.display = inside || below ? '' : 'none';
      var r = g.querySelector('rect'), t = g.querySelector('text');
      var px = inside ? (x - x0) * W / v : 0, pw = inside ? gv * W / v : W;
      r.setAttribute('x', px.toFixed(2));
      r.setAttribute('width', Math.max(pw - 0.5, 0.1).toFixed(2));
      r.style.opacity = below ? 0.5 : 1;
      t.setAttribute('x', (px + 3).toFixed(2));
      fit(g);
    });
  }
  frames.forEach(function (g) {
    fit(g);
    g.addEventListener('mouseover', function () { status.textContent = g.dataset.info; });
    g.addEventListener('mouseout', function () { status.textContent = 'hover a frame; click to zoom'; });
    g.addEventListener('click', function () { zoom(+g.dataset.x, +g.dataset.v, +g.dataset.d); });
  });
  // Lets a headless browser (and a test) see that the script ran.
  document.querySelector('svg').setAttribute('data-ready', String(frames.length));
})();
)JS";

}  // namespace

std::string ToFlameGraph(const v1::ProfileResponse& r, const std::string& title, bool svg) {
  Node root;
  root.name = "all";
  for (const v1::ProfileStack& s : r.stacks()) {
    Node* n = &root;
    n->value += s.samples();
    for (int i = s.frame_ids_size() - 1; i >= 0; --i) {
      const v1::ProfileFrame& f = r.frames(static_cast<int>(s.frame_ids(i)));
      std::unique_ptr<Node>& c = n->children[{FrameName(f), f.module()}];
      if (c == nullptr) {
        c = std::make_unique<Node>();
        c->name = FrameName(f);
        c->module = f.module();
        c->kernel = f.kernel();
      }
      c->value += s.samples();
      n = c.get();
    }
  }
  const int depth = Depth(root);
  const int height = kTop + (depth + 1) * kRowH + 30;
  std::string body;
  absl::StrAppend(
      &body,
      absl::StrFormat(
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\" font-family=\"Verdana, sans-serif\" font-size=\"12\">\n"
          "<style>g.f { cursor: pointer } g.f:hover rect { stroke: #000; stroke-width: 0.5 } "
          "text { pointer-events: none }</style>\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f8\"/>\n"
          "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n"
          "<text id=\"status\" x=\"4\" y=\"%d\">hover a frame; click to zoom</text>\n",
          kWidth, height, kWidth, height, kWidth / 2, XmlEscape(title), height - 10));
  if (root.value == 0) {
    absl::StrAppend(&body, "<text x=\"4\" y=\"60\">no samples matched</text>\n");
  } else {
    const uint64_t bytes_per_sample = r.kind() == v1::PROFILE_KIND_MEMORY ? FaultBytes(r, 1) : 0;
    Emit(root, 0, 0, depth, root.value, bytes_per_sample, &body);
  }
  if (svg) {
    absl::StrAppend(&body, "<script><![CDATA[", kScript, "]]></script>\n</svg>\n");
    return absl::StrCat("<?xml version=\"1.0\" standalone=\"no\"?>\n", body);
  }
  absl::StrAppend(&body, "</svg>\n");
  return absl::StrCat("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>",
                      XmlEscape(title), "</title></head>\n<body style=\"margin:8px\">\n", body,
                      "<script>", kScript, "</script>\n</body></html>\n");
}

std::string FormatHot(const v1::HotResponse& r) {
  std::string out;
  const v1::CoveredRange& c = r.covered();
  const bool memory = r.kind() == v1::PROFILE_KIND_MEMORY;
  if (c.intervals() == 0) {
    absl::StrAppend(&out, memory ? "memory profile" : "profile", ": no data in range yet\n");
  } else {
    const absl::Time a = absl::FromUnixNanos(c.start_unix_ns());
    const absl::Time b = absl::FromUnixNanos(c.end_unix_ns());
    const std::string range = absl::StrFormat(
        "%s .. %s (%s, %d intervals)",
        absl::FormatTime("%Y-%m-%d %H:%M:%S", a, absl::LocalTimeZone()),
        absl::FormatTime("%H:%M:%S", b, absl::LocalTimeZone()),
        absl::FormatDuration(absl::Seconds(absl::ToInt64Seconds(b - a))), c.intervals());
    if (memory) {
      absl::StrAppend(
          &out, absl::StrFormat("memory profile: %s, %d page-fault samples of 1 per %d faults: "
                                "%s newly touched (faults x 4 KiB)\n",
                                range, r.samples(), r.fault_period(), HumanBytes(r.fault_bytes())));
    } else {
      absl::StrAppend(&out, absl::StrFormat("profile: %s, %d samples at %d Hz per CPU\n", range,
                                            r.samples(), r.sample_hz()));
    }
  }
  const v1::ProfileLoss& l = r.loss();
  if (l.map_full() + l.kernel_stack_collisions() + l.stack_map_full() + l.store_dropped() > 0) {
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "warning: not recorded: %d samples (map full), %d kernel stacks (collision), "
            "%d stacks (stack map full), %d records (store cap)\n",
            l.map_full(), l.kernel_stack_collisions(), l.stack_map_full(), l.store_dropped()));
  }
  if (r.samples() > 0 && r.truncated_samples() > 0) {
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "note: %.1f%% of samples have user stacks that stop before an entry point "
            "(see vigil status: user stacks); total %% undercounts their callers\n",
            100.0 * static_cast<double>(r.truncated_samples()) / static_cast<double>(r.samples())));
  }
  if (r.functions().empty()) {
    absl::StrAppend(&out, "no samples matched\n");
    return out;
  }
  if (memory) {
    // Ranked by self bytes: the code that touched the memory itself.
    absl::StrAppend(
        &out,
        "\n  self%  total%   self bytes  total bytes  function                                  "
        "module\n"
        "------- ------- ------------ ------------ ----------------------------------------- "
        "------------------------\n");
    for (const v1::HotFunction& f : r.functions()) {
      absl::StrAppend(&out,
                      absl::StrFormat("%6.2f%% %6.2f%% %12s %12s  %-41s %s\n", f.self_pct(),
                                      f.total_pct(), HumanBytes(f.self_fault_bytes()),
                                      HumanBytes(f.total_fault_bytes()), f.name(), f.module()));
    }
  } else {
    absl::StrAppend(
        &out,
        "\n  self%  total%    samples  function                                  module\n"
        "------- ------- ---------- ----------------------------------------- "
        "------------------------\n");
    for (const v1::HotFunction& f : r.functions()) {
      absl::StrAppend(&out, absl::StrFormat("%6.2f%% %6.2f%% %10d  %-41s %s\n", f.self_pct(),
                                            f.total_pct(), f.self_samples(), f.name(), f.module()));
    }
  }
  if (r.functions_omitted() > 0) {
    absl::StrAppend(
        &out, absl::StrFormat("(%d more functions; --top to see them)\n", r.functions_omitted()));
  }
  return out;
}

}  // namespace vigil::cli
