#include "client/quantize_command.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/calibration_text.h"
#include "client/command_line.h"
#include "client/quantized_checkpoint_command.h"
#include "client/terminal_progress.h"
#include "core/calibration/eval_report_json.h"
#include "core/calibration/layerwise_method.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/model/forward_pass.h"
#include "core/quant/model_quantizer.h"
#include "core/util/byte_size.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

absl::Status UsageError(const std::string& msg) {
  return absl::InvalidArgumentError(msg + " (see 'quantfleet quantize --help')");
}

absl::StatusOr<GgmlType> ParseTypeFlag(const std::string& flag, const std::string& value) {
  std::optional<GgmlType> t = ParseGgmlTypeName(value);
  if (!t) {
    return UsageError(absl::StrFormat("%s: '%s' is not a tensor type (e.g. q8_0, q6_K, f16)", flag, value));
  }
  return *t;
}

absl::Status AddTensorType(const std::string& spec, QuantizeCommandArgs& out) {
  absl::StatusOr<TensorTypeOverride> o = ParseTensorTypeOverride(spec);
  if (!o.ok()) return UsageError(std::string(o.status().message()));
  out.options.tensor_types.push_back(*o);
  out.raw_tensor_types.push_back(spec);
  return absl::OkStatus();
}

absl::Status AddTensorTypeFile(const std::string& path, QuantizeCommandArgs& out) {
  absl::StatusOr<std::string> text = ReadRegularFile(path, 1 << 20);
  if (!text.ok())
    return absl::Status(text.status().code(), absl::StrCat("--tensor-type-file ", text.status().message()));
  for (absl::string_view token : absl::StrSplit(*text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    QF_RETURN_IF_ERROR(AddTensorType(std::string(token), out));
  }
  return absl::OkStatus();
}

std::string ShapeString(const GgufTensorInfo& t) {
  std::vector<int64_t> dims(t.ne, t.ne + t.n_dims());
  return absl::StrFormat("[%s]", absl::StrJoin(dims, ", "));
}

nlohmann::json TensorJson(const PlannedTensor& p) {
  nlohmann::json j;
  j["name"] = p.output.name;
  j["shape"] = std::vector<int64_t>(p.output.ne, p.output.ne + p.output.n_dims());
  j["source_type"] = std::string(TypeName(p.source->info.type));
  j["type"] = std::string(TypeName(p.output.type));
  j["source_bytes"] = p.source->info.nbytes;
  j["bytes"] = p.output.nbytes;
  j["offset"] = p.output.offset;
  j["imatrix"] = p.imatrix != nullptr;
  j["fallback"] = p.fell_back;
  return j;
}

std::string TensorLine(const QuantizePlan& plan, size_t i) {
  const PlannedTensor& p = plan.tensors[i];
  return absl::StrFormat("[%4d/%4d] %-36s %-16s %6s -> %-6s %10s -> %10s%s", i + 1, plan.tensors.size(), p.output.name,
                         ShapeString(p.output), TypeName(p.source->info.type), TypeName(p.output.type),
                         HumanBytes(p.source->info.nbytes), HumanBytes(p.output.nbytes),
                         p.fell_back ? "  (fallback: row length)" : "");
}

}  // namespace

std::string QuantizeUsage() {
  return R"(usage: quantfleet quantize [options] INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS]

Quantizes a GGUF model on this machine. The output is byte-identical to what
llama.cpp's llama-quantize writes for the same input and options, and is
written atomically: a failed run leaves no file at OUTPUT.

  INPUT.gguf     the model; for a split model, its -00001-of-0000N.gguf part
  OUTPUT.gguf    defaults to ggml-model-TYPE.gguf beside INPUT
  TYPE           file type, case-insensitive: Q4_K_M, Q5_K_M, Q6_K, Q8_0,
                 Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q2_K_S, Q3_K_S, Q3_K_M, Q3_K_L,
                 Q4_K_S, Q5_K_S, IQ4_NL, IQ4_XS, F16, BF16, F32, COPY
                 (or its numeric id, as llama-quantize accepts)
  NTHREADS       same as --threads

options:
  --imatrix FILE              importance matrix (GGUF imatrix or legacy .dat)
  --include-weights NAME      use the imatrix only for tensors whose name
                              contains NAME (repeatable)
  --exclude-weights NAME      do not use the imatrix for tensors whose name
                              contains NAME (repeatable)
  --output-tensor-type TYPE   type of output.weight (e.g. q8_0)
  --token-embedding-type TYPE type of token_embd.weight
  --tensor-type NAME=TYPE     quantize tensors matching regex NAME to TYPE
                              (repeatable), e.g. --tensor-type attn_v=q8_0
  --tensor-type-file FILE     NAME=TYPE pairs separated by spaces or lines
  --leave-output-tensor       keep output.weight as it is
  --pure                      no k-quant mixture: every tensor gets TYPE
  --allow-requantize          allow converting already-quantized tensors
  --override-kv KEY=TYPE:VAL  set metadata in the output; TYPE is int, float,
                              bool or str (repeatable)
  --dry-run                   print each tensor's type and size and the total,
                              write nothing
  --threads N                 worker threads (default: all cores)
  --eval TEXT                 measure the written file against INPUT over TEXT
                              (perplexity of both, mean KL divergence, same top
                              token), as quantfleet eval does
  --eval-ctx N, --eval-chunks N  tokens per chunk (512) and chunks (16) of it
  --max-kld X                 with --eval: a file whose mean KLD is over X is
                              not left at OUTPUT but kept as OUTPUT.rejected.gguf,
                              and the run fails (exit code 1) saying why
  --max-ppl-ratio R           the same for PPL(file) / PPL(INPUT) over R
  --json                      print a JSON report on stdout instead of lines
  -h, --help                  this text

how the weight matrices are rounded:
  --method rtn                each type's own quantizer: llama-quantize's bytes
                              (the default)
  --method gptq               GPTQ: each matrix's rounding errors are moved
                              onto the columns still to quantize, weighted by
                              the inputs the matrix sees over --calibration
                              TEXT (--chunks, --ctx), so they cancel in its
                              output. Same types, size and file layout as
                              rtn, read by any llama.cpp. Each block's scales
                              come from the type's own quantizer; the
                              importance weights are --imatrix's, else the
                              text's own. Layer after layer: each layer's
                              inputs come through the quantized layers before
                              it. Matrices no calibration token reaches, and
                              the embeddings, stay rtn.
  --method awq                AWQ: per layer, a scale per input channel of
                              each group (q/k/v, o, gate/up, down) is searched
                              so that rounding W*s hurts least where large
                              activations meet the weights, and folded into
                              the norms and the v and up rows before rtn;
                              same types and size, read by any llama.cpp
  --method awq+gptq           AWQ's scales, then GPTQ: on the trained test
                              model, 0.69-0.80x the KL divergence of
                              llama-quantize --imatrix at the same size
  --damp X                    GPTQ's damping, a fraction of the mean Hessian
                              diagonal added to it (default 0.01; raised by
                              0.01 until the Hessian factors)
  --act-order                 GPTQ rounds the columns whose inputs carry the
                              most energy first, with every block's scales
                              fixed before any update (GPTQModel's desc_act
                              with static groups); the file keeps ordinary
                              blocks

checkpoints for vLLM and transformers instead of GGUF (from a Hugging Face
checkpoint folder; `quantfleet quantize --format gptq --help` for the options):
  --format gptq               GPTQModel's "gptq" format (--method gptq or rtn)
  --format awq                AutoAWQ's GEMM format (--method awq or rtn)

the best mix for a size (instead of TYPE's fixed recipe for the weight matrices):
  --target-size SIZE          the file is at most SIZE (14200000, 14.2MiB, 20GiB)
  --target-bpw BITS           or at most BITS bits per weight on average
  --calibration TEXT          text to measure on: each weight matrix is tried
                              in Q2_K..Q6_K and Q8_0 with the others untouched,
                              and the KL divergence of the model's predictions
                              is that choice's cost; the types with the least
                              total cost that fit are chosen. TYPE still sets
                              everything else (and the recorded file type).
  --chunks N, --ctx N         calibration chunks and tokens per chunk (8, 256),
                              for --target-size and --method alike

examples:
  quantfleet quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M
  quantfleet quantize --imatrix imatrix.gguf model-f16.gguf out.gguf IQ4_XS 8
  quantfleet quantize --dry-run model-f16.gguf Q5_K_M
  quantfleet quantize --method gptq --calibration calib.txt model-f16.gguf out.gguf Q4_K_M
  quantfleet quantize --target-size 4.1GiB --calibration calib.txt --imatrix imatrix.gguf \
      model-f16.gguf model-4.1G.gguf Q4_K_M
)";
}

absl::StatusOr<QuantizeCommandArgs> ParseQuantizeArgs(const std::vector<std::string>& args) {
  QuantizeCommandArgs out;
  std::vector<std::string> positional;
  auto type_flag = [](const char* flag, std::optional<GgmlType>* dst) {
    return [flag, dst](const std::string& v) -> absl::Status {
      QF_ASSIGN_OR_RETURN(*dst, ParseTypeFlag(flag, v));
      return absl::OkStatus();
    };
  };
  auto positive_real = [](const char* flag, double* dst) {
    return [flag, dst](const std::string& v) -> absl::Status {
      if (!absl::SimpleAtod(v, dst) || !(*dst > 0) || !std::isfinite(*dst)) {
        return UsageError(absl::StrFormat("%s '%s': expected a positive number", flag, v));
      }
      return absl::OkStatus();
    };
  };
  auto positive = [](const char* flag, int* dst) {
    return [flag, dst](const std::string& v) -> absl::Status {
      if (!absl::SimpleAtoi(v, dst) || *dst < 1) {
        return UsageError(absl::StrFormat("%s '%s': expected a positive number", flag, v));
      }
      return absl::OkStatus();
    };
  };
  CommandLine line("quantfleet quantize");
  line.Flag({"--leave-output-tensor"}, &out.options.leave_output_tensor)
      .Flag({"--pure"}, &out.options.pure)
      .Flag({"--allow-requantize"}, &out.options.allow_requantize)
      .Flag({"--dry-run"}, &out.dry_run)
      .Flag({"--json"}, &out.json)
      .Text({"--imatrix"}, &out.options.imatrix_path, "a file")
      .Value({"--target-size"}, "a size",
             [&out](const std::string& v) -> absl::Status {
               absl::StatusOr<uint64_t> bytes = ParseByteSize(v);
               if (!bytes.ok() || *bytes == 0) {
                 return UsageError(
                     absl::StrFormat("--target-size '%s': expected a size such as 14200000, 14.2MB or 20GiB", v));
               }
               out.target.file_bytes = *bytes;
               return absl::OkStatus();
             })
      .Value({"--target-bpw"}, "bits per weight",
             [&out](const std::string& v) -> absl::Status {
               if (!absl::SimpleAtod(v, &out.target.bits_per_weight) || !(out.target.bits_per_weight > 0)) {
                 return UsageError(absl::StrFormat("--target-bpw '%s': expected bits per weight, e.g. 4.5", v));
               }
               return absl::OkStatus();
             })
      .Choice({"--method"}, &out.method, {"rtn", "gptq", "awq", "awq+gptq"})
      .Flag({"--act-order"}, &out.act_order)
      .Value({"--damp"}, "a number in (0, 1]",
             [&out](const std::string& v) -> absl::Status {
               if (!absl::SimpleAtod(v, &out.damp) || !(out.damp > 0) || out.damp > 1) {
                 return UsageError(absl::StrFormat("--damp '%s': expected a number in (0, 1], e.g. 0.01", v));
               }
               out.damp_given = true;
               return absl::OkStatus();
             })
      .Text({"--calibration"}, &out.target.calibration, "a text file")
      .Value({"--chunks"}, "a positive number", positive("--chunks", &out.target.chunks))
      .Value({"--ctx"}, "a positive number", positive("--ctx", &out.target.ctx))
      .List({"--include-weights"}, &out.options.include_weights, "a tensor name pattern")
      .List({"--exclude-weights"}, &out.options.exclude_weights, "a tensor name pattern")
      .Value({"--output-tensor-type"}, "a tensor type",
             type_flag("--output-tensor-type", &out.options.output_tensor_type))
      .Value({"--token-embedding-type"}, "a tensor type",
             type_flag("--token-embedding-type", &out.options.token_embedding_type))
      .Value({"--tensor-type"}, "REGEX=TYPE", [&out](const std::string& v) { return AddTensorType(v, out); })
      .Value({"--tensor-type-file"}, "a file", [&out](const std::string& v) { return AddTensorTypeFile(v, out); })
      .Value({"--override-kv"}, "KEY=TYPE:VALUE",
             [&out](const std::string& v) -> absl::Status {
               QF_ASSIGN_OR_RETURN(GgufKv kv, ParseKvOverride(v));
               out.options.kv_overrides.push_back(std::move(kv));
               out.raw_kv_overrides.push_back(v);
               return absl::OkStatus();
             })
      .Value({"--threads"}, "a positive number", positive("--threads", &out.threads))
      .Text({"--eval"}, &out.gate.text, "a text file")
      .Value({"--eval-ctx"}, "a positive number", positive("--eval-ctx", &out.gate.ctx))
      .Value({"--eval-chunks"}, "a positive number", positive("--eval-chunks", &out.gate.chunks))
      .Value({"--max-kld"}, "a positive number", positive_real("--max-kld", &out.gate.max_kld))
      .Value(
          {"--max-ppl-ratio"}, "a number of 1 or more",
          [&out](const std::string& v) -> absl::Status {
            if (!absl::SimpleAtod(v, &out.gate.max_ppl_ratio) || !(out.gate.max_ppl_ratio >= 1) ||
                !std::isfinite(out.gate.max_ppl_ratio)) {
              return UsageError(absl::StrFormat("--max-ppl-ratio '%s': expected a ratio of 1 or more, e.g. 1.02", v));
            }
            return absl::OkStatus();
          })
      .Positional(&positional, 4);
  for (const char* unsupported : {"--keep-split", "--prune-layers", "--max-buffer-size"}) {
    line.Refuse({unsupported}, absl::UnimplementedError(absl::StrFormat(
                                   "%s is not supported; quantfleet writes one file and keeps its memory bounded on "
                                   "its own",
                                   unsupported)));
  }
  QF_ASSIGN_OR_RETURN(const bool run, line.Parse(args));
  out.help = !run;
  if (out.help) return out;
  if (!out.options.include_weights.empty() && !out.options.exclude_weights.empty()) {
    return UsageError("--include-weights and --exclude-weights cannot be used together");
  }
  if (out.method != "rtn" && out.target.calibration.empty()) {
    return UsageError(
        absl::StrFormat("--method %s needs --calibration TEXT to measure the layers' inputs over", out.method));
  }
  if (out.damp_given && !absl::EndsWith(out.method, "gptq")) {
    return UsageError("--damp is GPTQ's: give it with --method gptq or awq+gptq");
  }
  if (out.act_order && !absl::EndsWith(out.method, "gptq")) {
    return UsageError("--act-order is GPTQ's: give it with --method gptq or awq+gptq");
  }
  if ((out.gate.max_kld > 0 || out.gate.max_ppl_ratio > 0) && out.gate.text.empty()) {
    return UsageError("--max-kld and --max-ppl-ratio need --eval TEXT to measure the file with");
  }
  if (!out.gate.text.empty() && out.dry_run)
    return UsageError("--eval measures the written file; --dry-run writes none");
  if (positional.size() < 2) return UsageError("expected INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS]");
  out.input = positional[0];
  size_t next = 1;
  // Like llama-quantize: when the second argument is a type, the output
  // name is derived from it.
  if (std::optional<FileTypeOption> ft = ParseFileType(positional[1])) {
    out.options.file_type = *ft;
    const std::filesystem::path dir = std::filesystem::path(out.input).parent_path();
    out.output = (dir / absl::StrFormat("ggml-model-%s.gguf", ft->name)).string();
    next = 2;
  } else {
    out.output = positional[1];
    if (positional.size() < 3) return UsageError("missing TYPE after OUTPUT");
    std::optional<FileTypeOption> ft2 = ParseFileType(positional[2]);
    if (!ft2) return UsageError(absl::StrFormat("'%s' is not a file type (e.g. Q4_K_M, Q8_0, F16)", positional[2]));
    out.options.file_type = *ft2;
    next = 3;
  }
  if (next < positional.size()) {
    if (!absl::SimpleAtoi(positional[next], &out.threads) || out.threads < 1) {
      return UsageError(absl::StrFormat("NTHREADS '%s': expected a positive number", positional[next]));
    }
    ++next;
  }
  if (next < positional.size()) return UsageError(absl::StrFormat("unexpected argument '%s'", positional[next]));
  return out;
}

int RunQuantizeCommand(const std::vector<std::string>& raw_args) {
  if (WantsCheckpointFormat(raw_args)) return RunQuantizedCheckpointCommand(raw_args);
  absl::StatusOr<QuantizeCommandArgs> parsed = ParseQuantizeArgs(raw_args);
  if (!parsed.ok()) {
    absl::FPrintF(stderr, "quantfleet quantize: %s\n", parsed.status().message());
    return 1;
  }
  QuantizeCommandArgs& args = *parsed;
  if (args.help) {
    absl::PrintF("%s", QuantizeUsage());
    return 0;
  }
  auto fail = [&](const absl::Status& s) {
    if (args.json) {
      nlohmann::json j;
      j["ok"] = false;
      j["error"] = std::string(s.message());
      absl::PrintF("%s\n", j.dump(2));
    }
    absl::FPrintF(stderr, "quantfleet quantize: %s\n", s.message());
    return 1;
  };
  if (!args.dry_run) {
    std::error_code ec;
    if (std::filesystem::equivalent(args.input, args.output, ec)) {
      return fail(absl::InvalidArgumentError(absl::StrFormat("input and output are the same file: %s", args.output)));
    }
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<GgufModel> model = OpenModel(args.input);
  if (!model.ok()) return fail(model.status());

  std::optional<Imatrix> imatrix;
  if (!args.options.imatrix_path.empty()) {
    absl::StatusOr<Imatrix> loaded = LoadImatrix(args.options.imatrix_path);
    if (!loaded.ok()) return fail(loaded.status());
    imatrix = std::move(*loaded);
    FilterImatrix(*imatrix, args.options.include_weights, args.options.exclude_weights);
  }
  absl::StatusOr<QuantizePlan> plan =
      BuildQuantizePlan(*model, args.options, imatrix ? &*imatrix : nullptr, args.dry_run);
  if (!plan.ok()) return fail(plan.status());
  if (args.target.file_bytes > 0 || args.target.bits_per_weight > 0) {
    // A type per matrix for the size, measured; then the recipe's plan with
    // those types as overrides.
    args.target.threads = args.threads;
    absl::StatusOr<TargetChoice> choice =
        ChooseTypesForSize(*model, args.input, *plan, imatrix ? &*imatrix : nullptr, args.target);
    if (!choice.ok()) return fail(choice.status());
    args.options.tensor_types.insert(args.options.tensor_types.begin(), choice->overrides.begin(),
                                     choice->overrides.end());
    plan = BuildQuantizePlan(*model, args.options, imatrix ? &*imatrix : nullptr, args.dry_run);
    if (!plan.ok()) return fail(plan.status());
    if (args.target.file_bytes > 0 && plan->file_size() > args.target.file_bytes) {
      return fail(absl::InternalError(absl::StrFormat("the chosen types make %d bytes, over the %d asked for",
                                                      plan->file_size(), args.target.file_bytes)));
    }
    if (!args.json) {
      absl::FPrintF(stderr,
                    "chose the types of %d matrices for %s: expected KLD %.6f (the sum of each matrix's own, measured "
                    "on %s), %s's types %.6f\n",
                    choice->overrides.size(), HumanBytes(plan->file_size()), choice->expected_kld,
                    args.target.calibration, args.options.file_type.name, choice->recipe_kld);
    }
  }
  for (const std::string& w : plan->warnings) absl::FPrintF(stderr, "warning: %s\n", w);
  // The text --eval measures with is checked before anything is written.
  std::optional<PreparedGate> prepared_gate;
  if (!args.gate.text.empty()) {
    absl::StatusOr<PreparedGate> prepared = PrepareGate(*model, args.input, args.gate);
    if (!prepared.ok()) return fail(prepared.status());
    prepared_gate.emplace(*std::move(prepared));
  }

  const bool tty = ::isatty(STDERR_FILENO) && !args.json;
  const int threads = args.threads > 0 ? args.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (!args.json) {
    absl::FPrintF(stderr, "%s '%s' -> '%s' as %s%s with %d threads\n", args.dry_run ? "planning" : "quantizing",
                  args.input, args.dry_run ? "(dry run)" : args.output, args.options.file_type.name,
                  args.method == "rtn" ? "" : " by " + args.method, threads);
  }
  if (args.dry_run) {
    if (!args.json) {
      for (size_t i = 0; i < plan->tensors.size(); ++i) absl::PrintF("%s\n", TensorLine(*plan, i));
    }
  } else {
    TerminalProgress bar(stderr, plan->source_bytes, plan->tensors.size());
    // Threads finish tensors slightly out of order; lines are printed in
    // file order as soon as every tensor before them is done. Tensors with
    // no data never report, so they count as done from the start.
    std::vector<bool> done(plan->tensors.size(), false);
    for (size_t i = 0; i < done.size(); ++i) done[i] = plan->tensors[i].output.nbytes == 0;
    size_t next_line = 0;
    RunOptions run;
    run.threads = threads;
    std::unique_ptr<LayerwiseMethod> calibrated;
    if (args.method != "rtn") {
      absl::StatusOr<CalibrationText> calibration =
          LoadCalibrationText(*model, args.input, args.target.calibration, args.target.ctx, args.target.chunks);
      if (!calibration.ok()) return fail(calibration.status());
      LayerwiseOptions options;
      options.awq = absl::StartsWith(args.method, "awq");
      options.gptq = absl::EndsWith(args.method, "gptq");
      options.gptq_options.damp = args.damp;
      options.gptq_options.act_order = args.act_order;
      if (tty && !args.json) {  // where a long layer is, over the line it ends with
        options.progress = [&args](const std::string& step) {
          absl::FPrintF(stderr, "\r%s: %s\033[K", args.method, step);
        };
      }
      absl::StatusOr<std::unique_ptr<LayerwiseMethod>> method = LayerwiseMethod::Create(
          *model, args.input, *plan, std::move(calibration->chunks), options, threads,
          [&](const LayerReport& r, int n_layer) {
            if (args.json) return;
            absl::FPrintF(stderr, "%s%s: layer %d/%d done (%d matrices%s)%s", tty ? "\r" : "", args.method, r.layer + 1,
                          n_layer, r.matrices,
                          options.awq ? absl::StrFormat(", %d of 4 groups scaled", r.scaled_groups) : "",
                          tty && r.layer + 1 < n_layer ? "" : "\n");
          });
      if (!method.ok()) return fail(method.status());
      calibrated = *std::move(method);
      run.method = calibrated.get();
      if (options.awq && !calibrated->folds() && !args.json) {
        bool any = false;
        for (const PlannedTensor& t : plan->tensors) any = any || calibrated->Handles(t);
        absl::FPrintF(stderr,
                      "note: AWQ's scales are not folded into this model (its plan keeps some of a layer's tensors as "
                      "they are); %s\n",
                      !any           ? "it is quantized as with --method rtn"
                      : options.gptq ? "its matrices still get GPTQ with the text's importance weights"
                                     : "its matrices still get the text's importance weights");
      }
    }
    run.on_tensor_done = [&](const QuantizeProgress& p) {
      if (tty) {
        bar.Update(p.tensors_done, p.source_bytes_done, plan->tensors[p.tensor_index].output.name);
        return;
      }
      if (args.json) return;
      done[p.tensor_index] = true;
      for (; next_line < done.size() && done[next_line]; ++next_line) {
        absl::PrintF("%s\n", TensorLine(*plan, next_line));
      }
      std::fflush(stdout);
    };
    // With --eval the file reaches OUTPUT only once measured.
    absl::Status s = RunQuantizePlan(*model, *plan, prepared_gate ? UnmeasuredPath(args.output) : args.output, run);
    if (tty) bar.Finish();
    if (!s.ok()) return fail(s);
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::optional<GateOutcome> measured;
  if (prepared_gate) {
    if (!args.json) absl::FPrintF(stderr, "measuring %s against %s over %s\n", args.output, args.input, args.gate.text);
    absl::StatusOr<GateOutcome> m = MeasureArtifact(*prepared_gate, args.output);
    if (!m.ok()) return fail(m.status());
    measured = *std::move(m);
  }
  const double bpw_in = 8.0 * static_cast<double>(plan->source_bytes) / static_cast<double>(plan->n_elements);
  const double bpw_out = 8.0 * static_cast<double>(plan->output_bytes) / static_cast<double>(plan->n_elements);
  if (args.json) {
    nlohmann::json j;
    j["ok"] = true;
    j["input"] = args.input;
    j["output"] = args.dry_run ? nlohmann::json(nullptr) : nlohmann::json(args.output);
    j["file_type"] = std::string(args.options.file_type.name);
    j["dry_run"] = args.dry_run;
    j["method"] = args.method;
    j["threads"] = threads;
    j["source_bytes"] = plan->source_bytes;
    j["output_bytes"] = plan->output_bytes;
    j["file_bytes"] = plan->file_size();
    j["bits_per_weight"] = bpw_out;
    j["fallbacks"] = plan->n_fallbacks;
    j["requires_imatrix"] = plan->missing_imatrix;
    j["seconds"] = secs;
    j["tensors"] = nlohmann::json::array();
    for (const PlannedTensor& p : plan->tensors) j["tensors"].push_back(TensorJson(p));
    if (measured) {
      j["eval"] = ReportJson(measured->report);
      j["ok"] = measured->failed.empty();
      if (!measured->failed.empty()) {
        j["error"] = "quality gate: " + measured->failed;
        j["rejected_output"] = measured->kept_as;
      }
    }
    absl::PrintF("%s\n", j.dump(2));
    return measured && !measured->failed.empty() ? 1 : 0;
  }
  absl::FPrintF(stderr, "model size: %s (%.2f bits per weight)\n", HumanBytes(plan->source_bytes), bpw_in);
  absl::FPrintF(stderr, "quant size: %s (%.2f bits per weight)\n", HumanBytes(plan->output_bytes), bpw_out);
  if (plan->n_fallbacks > 0) {
    absl::FPrintF(stderr, "note: %d of %d tensors used a fallback type (row length not a multiple of the block)\n",
                  plan->n_fallbacks, plan->tensors.size());
  }
  if (plan->missing_imatrix) {
    absl::FPrintF(stderr, "note: the real run will need an importance matrix (--imatrix FILE)\n");
  }
  if (!args.dry_run) {
    absl::FPrintF(stderr, "wrote %s in %.2f s (%s/s of source)\n", args.output, secs,
                  HumanBytes(static_cast<uint64_t>(static_cast<double>(plan->source_bytes) / std::max(secs, 1e-9))));
  }
  if (measured) {
    const EvalReport& r = measured->report;
    absl::FPrintF(stderr,
                  "quality over %d chunks of %d: PPL %.4f (input %.4f, ratio %.4f), mean KLD %.6f ± %.6f, same top "
                  "token %.2f%%\n",
                  r.chunks, args.gate.ctx, r.ppl.value, r.ppl_base.value, r.ppl_ratio.value, r.kld.value,
                  r.kld.uncertainty, 100 * r.same_top.value);
    if (!measured->failed.empty()) {
      absl::FPrintF(stderr, "quantfleet quantize: quality gate: %s; the file is kept as %s\n", measured->failed,
                    measured->kept_as);
      return 1;
    }
  }
  return 0;
}

}  // namespace quantfleet
