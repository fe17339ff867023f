#include "client/tokenize_command.h"

#include <fstream>
#include <iterator>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_line.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet tokenize -m MODEL.gguf (-p TEXT | -f FILE) [options]

Prints the tokens of a text under the model's own tokenizer (from its GGUF
metadata): the same ids llama.cpp's llama_tokenize gives. Supported:
SentencePiece ("llama") and byte-level BPE ("gpt2") with the default/gpt-2,
llama-bpe (Llama 3) and qwen2 pre-tokenizers.

  -m, --model FILE      the model (only its metadata is read)
  -p, --prompt TEXT     the text
  -f, --file FILE       read the text from FILE
  --ids                 print only the ids, as a list
  --no-bos              do not add BOS/EOS even where the model adds them
  --no-parse-special    treat control tokens written in the text as text
  --json                print {"tokens": [{"id", "piece"}...], "count"}
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet tokenize: %s\n", message);
  return 1;
}

}  // namespace

int RunTokenizeCommand(const std::vector<std::string>& args) {
  std::string model_path, text, file;
  std::optional<std::string> prompt;
  bool ids = false, bos = true, parse_special = true, json = false;
  CommandLine line("quantfleet tokenize");
  line.Text({"-m", "--model"}, &model_path, "a file")
      .Text({"-p", "--prompt"}, &prompt, "a text")
      .Text({"-f", "--file"}, &file, "a file")
      .Flag({"--ids"}, &ids)
      .Flag({"--no-bos"}, &bos, false)
      .Flag({"--no-parse-special"}, &parse_special, false)
      .Flag({"--json"}, &json);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (model_path.empty()) return Fail("give the model with -m MODEL.gguf");
  if (prompt.has_value() == !file.empty()) return Fail("give the text with either -p TEXT or -f FILE");
  if (prompt) text = *prompt;
  if (!file.empty()) {
    absl::StatusOr<std::string> read = ReadRegularFile(file);
    if (!read.ok()) return Fail(std::string(read.status().message()));
    text = *std::move(read);
  }
  absl::StatusOr<GgufModel> model = OpenModel(model_path);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(model->kv(), model_path);
  if (!vocab.ok()) return Fail(std::string(vocab.status().message()));
  auto shared = std::make_shared<const Vocab>(*std::move(vocab));
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(shared);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  const std::vector<TokenId> tokens = tokenizer->Tokenize(text, bos, parse_special);
  if (json) {
    nlohmann::json j;
    j["count"] = tokens.size();
    j["tokens"] = nlohmann::json::array();
    for (TokenId t : tokens) j["tokens"].push_back({{"id", t}, {"piece", tokenizer->Piece(t)}});
    absl::PrintF("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (ids) {
    absl::PrintF("[%s]\n", absl::StrJoin(tokens, ", "));
  } else {
    for (TokenId t : tokens) absl::PrintF("%6d -> '%s'\n", t, tokenizer->Piece(t));
    absl::PrintF("%d tokens\n", tokens.size());
  }
  return 0;
}

}  // namespace quantfleet
