// Time, injected: services never read the system clock themselves, so tests control expiry.
#pragma once

#include <atomic>
#include <chrono>

#include "model.h"

namespace ijazat::appliance {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
};

inline std::chrono::system_clock::time_point AsTimePoint(Timestamp t) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(t));
}

class SystemClock final : public Clock {
 public:
  Timestamp Now() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock tests move by hand. Thread safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_(start) {}
  Timestamp Now() const override { return now_.load(); }
  void Advance(std::int64_t seconds) { now_ += seconds; }
  void Set(Timestamp now) { now_ = now; }

 private:
  std::atomic<Timestamp> now_;
};

}  // namespace ijazat::appliance
