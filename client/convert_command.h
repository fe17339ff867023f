// `quantfleet convert`: a Hugging Face checkpoint folder to a GGUF file,
// byte for byte what llama.cpp's convert_hf_to_gguf.py writes.
//
// Thread-safety: called once from main.
#ifndef QUANTFLEET_CLIENT_CONVERT_COMMAND_H_
#define QUANTFLEET_CLIENT_CONVERT_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

int RunConvertCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CONVERT_COMMAND_H_
