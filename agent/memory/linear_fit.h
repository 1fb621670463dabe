// Least-squares slope of y over t, accumulated one point at a time: the
// growth rate of `vigil memory` and of memory-growth alerts.
#pragma once

namespace vigil {

class LinearFit {
 public:
  void Add(double t, double y) {
    n_ += 1;
    st_ += t;
    sy_ += y;
    stt_ += t * t;
    sty_ += t * y;
  }
  // dy/dt; 0 with fewer than two distinct t.
  double Slope() const {
    const double d = n_ * stt_ - st_ * st_;
    return n_ < 2 || d <= 0 ? 0 : (n_ * sty_ - st_ * sy_) / d;
  }
  double points() const { return n_; }

 private:
  double n_ = 0, st_ = 0, sy_ = 0, stt_ = 0, sty_ = 0;
};

}  // namespace vigil
