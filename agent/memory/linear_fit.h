// Least-squares slope of y over t, accumulated one point at a time: the
// growth rate of `vigil memory` and of memory-growth alerts, and the soak's
// RSS slopes (tests/bench/soak.cc, with their standard errors).
#pragma once

#include <algorithm>
#include <cmath>

namespace vigil {

class LinearFit {
 public:
  void Add(double t, double y) {
    n_ += 1;
    st_ += t;
    sy_ += y;
    stt_ += t * t;
    sty_ += t * y;
    syy_ += y * y;
  }
  // dy/dt; 0 with fewer than two distinct t.
  double Slope() const {
    const double d = n_ * stt_ - st_ * st_;
    return n_ < 2 || d <= 0 ? 0 : (n_ * sty_ - st_ * sy_) / d;
  }
  // The slope's standard error, from the scatter around the line; 0 with
  // fewer than three points.
  double SlopeStdError() const {
    if (n_ < 3) return 0;
    const double ctt = stt_ - st_ * st_ / n_;
    const double cty = sty_ - st_ * sy_ / n_;
    const double cyy = syy_ - sy_ * sy_ / n_;
    if (ctt <= 0) return 0;
    const double sse = std::max(0.0, cyy - cty * cty / ctt);
    return std::sqrt(sse / (n_ - 2) / ctt);
  }
  double points() const { return n_; }

 private:
  double n_ = 0, st_ = 0, sy_ = 0, stt_ = 0, sty_ = 0, syy_ = 0;
};

}  // namespace vigil
