// oracle-logits: the logits llama.cpp's llama_decode gives for a token
// sequence (positions 0..n-1, one sequence, every position's logits), for
// the forward-pass conformance test. Compiled by fetch_oracle.sh against the
// pinned prebuilt libllama (never part of quantfleet itself).
//
// Usage: oracle-logits MODEL.gguf TOKENS OUT
// TOKENS holds the ids separated by white space; OUT receives n * n_vocab
// float32 values, position by position.
#include <cstdio>
#include <fstream>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: oracle-logits MODEL.gguf TOKENS OUT\n");
    return 1;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  std::vector<llama_token> tokens;
  std::ifstream in(argv[2]);
  for (llama_token t; in >> t;) tokens.push_back(t);
  if (tokens.empty()) return 1;
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (model == nullptr) {
    std::fprintf(stderr, "oracle-logits: cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  const uint32_t n = static_cast<uint32_t>(tokens.size());
  cp.n_ctx = (n + 255) / 256 * 256;
  cp.n_batch = n;
  cp.n_ubatch = n;
  cp.n_threads = 2;
  cp.n_threads_batch = 2;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) return 1;
  llama_batch batch = llama_batch_init(static_cast<int32_t>(n), 0, 1);
  for (uint32_t i = 0; i < n; ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(n);
  if (llama_decode(ctx, batch) != 0) {
    std::fprintf(stderr, "oracle-logits: llama_decode failed\n");
    return 1;
  }
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::ofstream out(argv[3], std::ios::binary);
  for (uint32_t i = 0; i < n; ++i) {
    out.write(reinterpret_cast<const char*>(llama_get_logits_ith(ctx, static_cast<int32_t>(i))),
              static_cast<std::streamsize>(n_vocab * sizeof(float)));
  }
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return out.good() ? 0 : 1;
}
