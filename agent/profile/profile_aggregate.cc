#include "agent/profile/profile_aggregate.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/store/request_fields.h"
#include "common/regex.h"

namespace vigil {

ProfileLossCounts& ProfileLossCounts::operator+=(const ProfileLossCounts& o) {
  samples += o.samples;
  idle += o.idle;
  fault_samples += o.fault_samples;
  fault_no_user += o.fault_no_user;
  map_calls += o.map_calls;
  brk_unknown += o.brk_unknown;
  map_full += o.map_full;
  kernel_collisions += o.kernel_collisions;
  stack_map_full += o.stack_map_full;
  no_buffer += o.no_buffer;
  drain_failed += o.drain_failed;
  return *this;
}

void ProfileLossCounts::ToProto(uint64_t store_dropped, v1::ProfileLoss* out) const {
  out->set_map_full(map_full + no_buffer);
  out->set_kernel_stack_collisions(kernel_collisions);
  out->set_stack_map_full(stack_map_full);
  out->set_store_dropped(store_dropped);
  out->set_idle_samples(idle);
  out->set_drain_failed(drain_failed);
}

uint32_t ProfileInterval::Intern(const FramePtr& f) {
  auto [it, inserted] = building_.try_emplace(f.get(), static_cast<uint32_t>(frames.size()));
  if (inserted) frames.push_back(f);
  return it->second;
}

void ProfileInterval::Append(const ProfileStackRecord& meta, const std::vector<FramePtr>& kernel,
                             const std::vector<FramePtr>& user) {
  ProfileStackRecord r = meta;
  r.first = static_cast<uint32_t>(pool.size());
  r.kernel_frames = static_cast<uint16_t>(kernel.size());
  r.user_frames = static_cast<uint16_t>(user.size());
  for (const FramePtr& f : kernel) pool.push_back(Intern(f));
  for (const FramePtr& f : user) pool.push_back(Intern(f));
  stacks.push_back(r);
}

std::pair<std::string, std::string> FunctionKey(const Frame& f) {
  // Named frames at different offsets fold into one function; unnamed
  // frames stay apart by offset.
  return {f.named() ? f.name() : f.DisplayName(), f.module()};
}

void ProfileInterval::Seal() {
  frame_fn.clear();
  functions.clear();
  frame_fn.reserve(frames.size());
  absl::flat_hash_map<std::pair<std::string, std::string>, uint32_t> by_key;
  for (const FramePtr& f : frames) {
    auto [it, inserted] =
        by_key.try_emplace(FunctionKey(*f), static_cast<uint32_t>(functions.size()));
    if (inserted) functions.push_back(f);
    frame_fn.push_back(it->second);
  }
  building_ = {};
  pool.shrink_to_fit();
  stacks.shrink_to_fit();
  frames.shrink_to_fit();
  functions.shrink_to_fit();
}

namespace {

constexpr uint32_t kDefaultTop = 20;
constexpr uint32_t kMaxTop = 10000;

template <typename Req>
absl::StatusOr<ProfileQuery> ValidateCommon(const Req& req) {
  ProfileQuery q;
  absl::StatusOr<uint32_t> kind = ProfileKindOf(req.kind());
  if (!kind.ok()) return kind.status();
  q.kind = *kind;
  q.pid = req.pid();
  q.tid = req.tid();
  if (!req.comm_regex().empty()) {
    absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(req.comm_regex(), "comm_regex");
    if (!re.ok()) return re.status();
    q.comm = *std::move(re);
  }
  absl::StatusOr<v1::FrameFilter> frames =
      EnumField(req.frames(), v1::FrameFilter_IsValid, v1::FRAME_FILTER_ALL, "frames");
  if (!frames.ok()) return frames.status();
  q.frames = *frames;
  if (req.range().since_ago_ns() < 0 || req.range().until_ago_ns() < 0) {
    return absl::InvalidArgumentError("range: since_ago_ns and until_ago_ns must be >= 0");
  }
  if (req.range().since_ago_ns() != 0 && req.range().until_ago_ns() >= req.range().since_ago_ns()) {
    return absl::InvalidArgumentError("range: until must be more recent than since");
  }
  return q;
}

// The selected frames of a record: [begin, end) in the interval's pool.
std::pair<uint32_t, uint32_t> Selected(const ProfileStackRecord& r, v1::FrameFilter f) {
  const uint32_t k0 = r.first, u0 = r.first + r.kernel_frames, end = u0 + r.user_frames;
  switch (f) {
    case v1::FRAME_FILTER_USER:
      return {u0, end};
    case v1::FRAME_FILTER_KERNEL:
      return {k0, u0};
    default:
      return {k0, end};
  }
}

// A response's unit: its kind, and for page faults the period and bytes.
template <typename Resp>
void SetKind(const ProfileQuery& q, uint64_t samples, Resp* out) {
  if (q.kind != PROFILE_KIND_FAULT) {
    out->set_kind(v1::PROFILE_KIND_CPU);
    return;
  }
  out->set_kind(v1::PROFILE_KIND_MEMORY);
  out->set_fault_period(q.fault_period);
  out->set_fault_bytes(FaultBytes(samples, q.fault_period));
}

void FrameToProto(const Frame& f, v1::ProfileFrame* out) {
  out->set_name(f.name());
  out->set_module(f.module());
  out->set_offset(f.offset);
  out->set_kernel(f.kernel);
}

std::string CommString(const char (&c)[VIGIL_PROFILE_COMM_LEN]) {
  return std::string(c, strnlen(c, VIGIL_PROFILE_COMM_LEN));
}

}  // namespace

absl::StatusOr<uint32_t> ProfileKindOf(v1::ProfileKind kind) {
  switch (kind) {
    case v1::PROFILE_KIND_CPU:
      return PROFILE_KIND_CPU;
    case v1::PROFILE_KIND_MEMORY:
      return PROFILE_KIND_FAULT;
    default:
      // An enum field holds any int32 on the wire (proto3 keeps unknown
      // values), so this is reachable from a client.
      return absl::InvalidArgumentError(absl::StrCat("kind: unknown profile kind ", kind));
  }
}

absl::StatusOr<ProfileQuery> ValidateHotRequest(const v1::HotRequest& req) {
  absl::StatusOr<ProfileQuery> q = ValidateCommon(req);
  if (!q.ok()) return q;
  if (req.top() > kMaxTop) {
    return absl::InvalidArgumentError(
        absl::StrCat("top ", req.top(), ": the maximum is ", kMaxTop));
  }
  q->top = req.top() == 0 ? kDefaultTop : req.top();
  return q;
}

absl::StatusOr<ProfileQuery> ValidateProfileRequest(const v1::ProfileRequest& req) {
  return ValidateCommon(req);
}

bool MatchesProfileQuery(const ProfileQuery& q, const ProfileStackRecord& r) {
  if (r.kind != q.kind) return false;
  if (q.pid != 0 && r.tgid != q.pid) return false;
  if (q.tid != 0 && r.tid != q.tid) return false;
  if (q.comm != nullptr) {
    const std::string comm = CommString(r.comm), pcomm = CommString(r.pcomm);
    if (!RE2::PartialMatch(comm, *q.comm) && !RE2::PartialMatch(pcomm, *q.comm)) return false;
  }
  return true;
}

uint32_t HotMerger::FunctionIndex(const FramePtr& f) {
  // Interned frames (almost all): one array index after the first sight of
  // each function.
  uint32_t* slot = nullptr;
  if (const uint32_t fn_id = f->fn_id(); fn_id != 0) {
    if (fn_id >= by_fn_id_.size()) by_fn_id_.resize(fn_id + 1024, UINT32_MAX);
    slot = &by_fn_id_[fn_id];
    if (*slot != UINT32_MAX) return *slot;
  } else {
    // Pointers are unique while merging: the store (locked) keeps every
    // frame alive.
    auto pit = by_ptr_.find(f.get());
    if (pit != by_ptr_.end()) return pit->second;
  }
  // First sight: by name, so interned and not-interned frames (function
  // table full) of one function meet in one row.
  std::string display;
  if (!f->named()) display = f->DisplayName();
  const absl::string_view name =
      f->named() ? absl::string_view(f->name()) : absl::string_view(display);
  auto nit = by_name_.find(std::make_pair(name, absl::string_view(f->module())));
  uint32_t id;
  if (nit != by_name_.end()) {
    id = nit->second;
  } else {
    id = static_cast<uint32_t>(fns_.size());
    fns_.push_back(Fn{f, std::move(display)});
    counts_.emplace_back();
    const Fn& fn = fns_.back();
    by_name_.emplace(std::make_pair(fn.frame->named() ? absl::string_view(fn.frame->name())
                                                      : absl::string_view(fn.display),
                                    absl::string_view(fn.frame->module())),
                     id);
  }
  if (slot != nullptr) {
    *slot = id;
  } else {
    by_ptr_.emplace(f.get(), id);
  }
  return id;
}

void HotMerger::Add(const ProfileInterval& in) {
  const ProfileInterval* ivp = &in;
  ProfileInterval indexed_copy;
  if (!in.sealed()) {  // only intervals built by hand (tests)
    indexed_copy = in;
    indexed_copy.Seal();
    ivp = &indexed_copy;
  }
  const ProfileInterval& iv = *ivp;
  loss_ += iv.loss;
  local_.assign(iv.functions.size(), UINT32_MAX);
  for (const ProfileStackRecord& r : iv.stacks) {
    if (!MatchesProfileQuery(query_, r)) continue;
    auto [b, e] = Selected(r, query_.frames);
    if (b == e) {
      without_frames_ += r.samples;
      continue;
    }
    samples_ += r.samples;
    if (r.truncated) truncated_ += r.samples;
    ++seq_;
    const uint32_t* pool = iv.pool.data();
    const uint32_t* frame_fn = iv.frame_fn.data();
    for (uint32_t i = b; i < e; ++i) {
      const uint32_t lf = frame_fn[pool[i]];
      uint32_t& q = local_[lf];
      if (q == UINT32_MAX) q = FunctionIndex(iv.functions[lf]);
      Counts& fn = counts_[q];
      if (i == b) fn.self += r.samples;
      if (fn.last_sample_seq != seq_) {
        fn.last_sample_seq = seq_;
        fn.total += r.samples;
      }
    }
  }
}

void HotMerger::Finish(v1::HotResponse* out) const {
  std::vector<uint32_t> ranked(fns_.size());
  for (uint32_t i = 0; i < ranked.size(); ++i) ranked[i] = i;
  auto by_rank = [this](uint32_t x, uint32_t y) {
    const Counts& a = counts_[x];
    const Counts& b = counts_[y];
    if (a.self != b.self) return a.self > b.self;
    if (a.total != b.total) return a.total > b.total;
    if (fns_[x].frame->name() != fns_[y].frame->name())
      return fns_[x].frame->name() < fns_[y].frame->name();
    return fns_[x].frame->module() < fns_[y].frame->module();
  };
  const size_t n = std::min<size_t>(ranked.size(), query_.top);
  const bool fault = query_.kind == PROFILE_KIND_FAULT;
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(n), ranked.end(),
                    by_rank);
  for (size_t i = 0; i < n; ++i) {
    const Fn& f = fns_[ranked[i]];
    const Counts& c = counts_[ranked[i]];
    v1::HotFunction* h = out->add_functions();
    h->set_name(f.frame->DisplayName());
    h->set_module(f.frame->module());
    h->set_self_samples(c.self);
    h->set_total_samples(c.total);
    h->set_self_pct(samples_ ? 100.0 * static_cast<double>(c.self) / static_cast<double>(samples_)
                             : 0);
    h->set_total_pct(samples_ ? 100.0 * static_cast<double>(c.total) / static_cast<double>(samples_)
                              : 0);
    h->set_kernel(f.frame->kernel);
    if (fault) {
      h->set_self_fault_bytes(FaultBytes(c.self, query_.fault_period));
      h->set_total_fault_bytes(FaultBytes(c.total, query_.fault_period));
    }
  }
  out->set_functions_omitted(static_cast<uint32_t>(ranked.size() - n));
  out->set_samples(samples_);
  out->set_samples_without_frames(without_frames_);
  out->set_truncated_samples(truncated_);
  SetKind(query_, samples_, out);
  loss_.ToProto(0, out->mutable_loss());
}

uint32_t FrameInterner::Index(const ProfileInterval& iv, uint32_t i) {
  uint32_t& q = local_[i];
  if (q != UINT32_MAX) return q;
  const FramePtr& f = iv.frames[i];
  auto it = by_ptr_.find(f.get());
  if (it != by_ptr_.end()) return q = it->second;
  const std::string key =
      absl::StrCat(f->name(), "\x1f", f->module(), "\x1f", f->offset, "\x1f", f->kernel ? 1 : 0);
  auto [vit, inserted] = by_value_.try_emplace(key, static_cast<uint32_t>(frames_.size()));
  if (inserted) frames_.push_back(f);
  by_ptr_.emplace(f.get(), vit->second);
  return q = vit->second;
}

void ProfileMerger::Add(const ProfileInterval& iv) {
  loss_ += iv.loss;
  frames_.BeginInterval(iv);
  std::vector<uint32_t> key;
  for (const ProfileStackRecord& r : iv.stacks) {
    if (!MatchesProfileQuery(query_, r)) continue;
    auto [b, e] = Selected(r, query_.frames);
    if (b == e) continue;
    key.clear();
    key.push_back(r.tgid);
    key.push_back(r.tid);
    for (uint32_t i = b; i < e; ++i) key.push_back(frames_.Index(iv, iv.pool[i]));
    StackAgg& a = stacks_[key];
    a.samples += r.samples;
    a.truncated = a.truncated || r.truncated;
    // Names as of the newest interval.
    a.comm = CommString(r.comm);
    a.pcomm = CommString(r.pcomm);
    samples_ += r.samples;
    if (r.truncated) truncated_ += r.samples;
  }
}

void ProfileMerger::Finish(v1::ProfileResponse* out) const {
  for (const FramePtr& f : frames_.frames()) FrameToProto(*f, out->add_frames());
  // Deterministic order: most samples first.
  std::vector<const std::pair<const std::vector<uint32_t>, StackAgg>*> order;
  order.reserve(stacks_.size());
  for (const auto& kv : stacks_) order.push_back(&kv);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    if (a->second.samples != b->second.samples) return a->second.samples > b->second.samples;
    return a->first < b->first;
  });
  for (const auto* kv : order) {
    v1::ProfileStack* s = out->add_stacks();
    s->set_pid(kv->first[0]);
    s->set_tid(kv->first[1]);
    for (size_t i = 2; i < kv->first.size(); ++i) s->add_frame_ids(kv->first[i]);
    s->set_samples(kv->second.samples);
    s->set_comm(kv->second.comm);
    s->set_process_comm(kv->second.pcomm);
    s->set_truncated(kv->second.truncated);
    if (query_.kind == PROFILE_KIND_FAULT)
      s->set_fault_bytes(FaultBytes(kv->second.samples, query_.fault_period));
  }
  out->set_samples(samples_);
  out->set_truncated_samples(truncated_);
  SetKind(query_, samples_, out);
  loss_.ToProto(0, out->mutable_loss());
}

namespace {

bool MapsUp(uint8_t kind) { return kind == PROFILE_KIND_MMAP || kind == PROFILE_KIND_BRK; }

v1::MapCall MapCallOf(uint32_t kind) {
  switch (kind) {
    case PROFILE_KIND_MMAP:
      return v1::MAP_CALL_MMAP;
    case PROFILE_KIND_MUNMAP:
      return v1::MAP_CALL_MUNMAP;
    case PROFILE_KIND_BRK:
      return v1::MAP_CALL_BRK_GROW;
    case PROFILE_KIND_BRK_SHRINK:
      return v1::MAP_CALL_BRK_SHRINK;
    default:
      return v1::MAP_CALL_UNSPECIFIED;
  }
}

}  // namespace

void MapCallMerger::Add(const ProfileInterval& iv) {
  frames_.BeginInterval(iv);
  std::vector<uint32_t> key;
  for (const ProfileStackRecord& r : iv.stacks) {
    if (r.tgid != pid_ || r.kind < PROFILE_KIND_MMAP || r.kind >= PROFILE_KIND_MAX) continue;
    key.assign(1, r.kind);
    bool cut = false;
    // Map calls carry no kernel frames; user frames follow them anyway.
    const uint32_t u0 = r.first + r.kernel_frames;
    for (uint32_t i = u0; i < u0 + r.user_frames; ++i) {
      if (key.size() > max_frames_) {
        cut = true;
        break;
      }
      key.push_back(frames_.Index(iv, iv.pool[i]));
    }
    Agg& a = stacks_[key];
    a.calls += r.samples;
    a.bytes += r.bytes;
    a.cut = a.cut || cut;
    a.truncated = a.truncated || r.truncated;
    (MapsUp(r.kind) ? mapped_ : unmapped_) += r.bytes;
    (MapsUp(r.kind) ? mapping_calls_ : unmapping_calls_) += r.samples;
  }
}

void MapCallMerger::Finish(size_t top, v1::LargeMapCalls* out) const {
  using Entry = std::pair<const std::vector<uint32_t>, Agg>;
  std::vector<const Entry*> order;
  order.reserve(stacks_.size());
  for (const Entry& e : stacks_) order.push_back(&e);
  const size_t n = std::min(top, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(n), order.end(),
                    [](const Entry* a, const Entry* b) {
                      return a->second.bytes != b->second.bytes ? a->second.bytes > b->second.bytes
                                                                : a->first < b->first;
                    });
  out->set_mapped_bytes(mapped_);
  out->set_unmapped_bytes(unmapped_);
  out->set_mapping_calls(mapping_calls_);
  out->set_unmapping_calls(unmapping_calls_);
  out->set_stacks_omitted(static_cast<uint32_t>(order.size() - n));
  for (size_t i = 0; i < n; ++i) {
    const auto& [key, a] = *order[i];
    v1::MapCallStack* m = out->add_stacks();
    m->set_call(MapCallOf(key[0]));
    for (size_t j = 1; j < key.size(); ++j)
      FrameToProto(*frames_.frames()[key[j]], m->add_frames());
    m->set_frames_cut(a.cut);
    m->set_calls(a.calls);
    m->set_bytes(a.bytes);
    m->set_truncated(a.truncated);
  }
}

}  // namespace vigil
