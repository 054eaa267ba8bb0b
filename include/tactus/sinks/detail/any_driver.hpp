// SPDX-License-Identifier: BSL-1.0
#pragma once

#include <tactus/sinks/sink.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

// A sink's driver behind one interface: owned (moved in) or referred to (std::ref(driver), which
// must then outlive the servo or LED), a level sink or a switch.

namespace tactus::sinks::detail {

class any_driver {
 public:
  template <class D>
  explicit any_driver(D&& d) {
    using plain = std::remove_cvref_t<D>;
    using driver = unwrapped_t<plain>;
    static_assert(sink<driver>,
                  "tactus: a driver needs a non-blocking set(double), or set(bool) and `using value_type = bool;`");
    driver* p = nullptr;
    if constexpr (std::is_same_v<plain, driver>) {
      auto o = std::make_unique<owned<driver>>(std::forward<D>(d));
      p = &o->d;
      p_ = std::move(o);
    } else {
      p = &d.get();
      p_ = std::make_unique<referenced<driver>>(p);
    }
    switching_ = switch_sink<driver>;
    if constexpr (declares_lead<driver>) lead_ = std::chrono::nanoseconds(p->lead_time());
  }

  bool switching() const noexcept { return switching_; }
  /// The driver's declared lead_time(), if it declares one.
  std::optional<std::chrono::nanoseconds> lead() const noexcept { return lead_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// Where the driver's state starts, for a batch to prefetch (nullptr once reset).
  const void* address() const noexcept { return p_.get(); }

  void set(double v) { p_->set_level(v); }
  void set_on(bool on) { p_->set_on(on); }
  /// Lets go of the driver (an owned one is destroyed: its device closed).
  void reset() noexcept { p_.reset(); }

 private:
  struct base {
    virtual ~base() = default;
    virtual void set_level(double v) = 0;
    virtual void set_on(bool on) = 0;
  };
  template <class D>
  static void level(D& d, double v) {
    if constexpr (switch_sink<D>) d.set(v > 0);
    else d.set(v);
  }
  template <class D>
  static void on_off(D& d, bool on) {
    if constexpr (switch_sink<D>) d.set(on);
    else d.set(on ? 1.0 : 0.0);
  }
  template <class D>
  struct owned final : base {
    template <class A>
    explicit owned(A&& a) : d(std::forward<A>(a)) {}
    void set_level(double v) override { level(d, v); }
    void set_on(bool on) override { on_off(d, on); }
    D d;
  };
  template <class D>
  struct referenced final : base {
    explicit referenced(D* p) : d(p) {}
    void set_level(double v) override { level(*d, v); }
    void set_on(bool on) override { on_off(*d, on); }
    D* d;
  };

  std::unique_ptr<base> p_;
  std::optional<std::chrono::nanoseconds> lead_;
  bool switching_ = false;
};

}  // namespace tactus::sinks::detail
