// An activation sink that hands every product's input to two others (an
// importance-matrix collector and a Hessian collector over one run, say).
//
// Thread-safety: as the two sinks it feeds.
#ifndef QUANTFLEET_CORE_MODEL_TEE_SINK_H_
#define QUANTFLEET_CORE_MODEL_TEE_SINK_H_

#include <cstdint>

#include "core/model/forward_pass.h"

namespace quantfleet {

class TeeSink : public ActivationSink {
 public:
  TeeSink(ActivationSink* a, ActivationSink* b) : a_(a), b_(b) {}
  void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) override {
    a_->OnMatMulInput(weight, x, n_tokens);
    b_->OnMatMulInput(weight, x, n_tokens);
  }
  void OnExpertInput(const Linear& weight, int slot, const int32_t* experts, const float* x,
                     int64_t n_tokens) override {
    a_->OnExpertInput(weight, slot, experts, x, n_tokens);
    b_->OnExpertInput(weight, slot, experts, x, n_tokens);
  }
  bool WantsOutput() const override { return a_->WantsOutput() || b_->WantsOutput(); }

 private:
  ActivationSink* a_;
  ActivationSink* b_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_TEE_SINK_H_
