// oracle-tokenize: llama.cpp's llama_tokenize on many texts with one
// vocabulary load, for the tokenizer conformance test. Compiled by
// fetch_oracle.sh against the pinned prebuilt libllama (never part of
// quantfleet itself).
//
// Usage: oracle-tokenize VOCAB.gguf CASES ADD_SPECIAL(0|1) PARSE_SPECIAL(0|1)
// CASES holds one text per line, hex-encoded; the output holds one line
// per case with its token ids separated by spaces.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: oracle-tokenize VOCAB.gguf CASES ADD_SPECIAL PARSE_SPECIAL\n");
    return 1;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model_params params = llama_model_default_params();
  params.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[1], params);
  if (model == nullptr) {
    std::fprintf(stderr, "oracle-tokenize: cannot load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const bool add_special = argv[3][0] == '1';
  const bool parse_special = argv[4][0] == '1';
  std::ifstream cases(argv[2]);
  std::string hex;
  while (std::getline(cases, hex)) {
    std::string text;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
      text.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    std::vector<llama_token> tokens(text.size() + 8);
    int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0) {
      tokens.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), add_special, parse_special);
    }
    for (int i = 0; i < n; ++i) std::printf(i ? " %d" : "%d", tokens[static_cast<size_t>(i)]);
    std::printf("\n");
  }
  llama_model_free(model);
  return 0;
}
