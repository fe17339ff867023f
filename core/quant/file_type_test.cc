#include "core/quant/file_type.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

TEST(FileType, NamesParseCaseInsensitively) {
  EXPECT_EQ(ParseFileType("q4_k_m")->type, FileType::kQ4_K_M);
  EXPECT_EQ(ParseFileType("Q4_K")->type, FileType::kQ4_K_M);
  EXPECT_EQ(ParseFileType("iq4_xs")->type, FileType::kIQ4_XS);
  EXPECT_FALSE(ParseFileType("Q4_K_X").has_value());
  EXPECT_FALSE(ParseFileType("model.gguf").has_value());
}

TEST(FileType, NumericIdsParseAndF32WinsOverCopy) {
  // The first option with the id wins, as in llama-quantize: the Q4_K alias.
  EXPECT_EQ(ParseFileType("15")->name, "Q4_K");
  EXPECT_EQ(ParseFileType("15")->type, FileType::kQ4_K_M);
  EXPECT_EQ(ParseFileType("0")->name, "F32");
  EXPECT_FALSE(ParseFileType("0")->copy_only);
  EXPECT_TRUE(ParseFileType("copy")->copy_only);
  EXPECT_FALSE(ParseFileType("5").has_value());
}

TEST(FileType, DefaultTensorTypes) {
  EXPECT_EQ(DefaultTensorType(FileType::kQ4_K_M), GgmlType::kQ4_K);
  EXPECT_EQ(DefaultTensorType(FileType::kQ3_K_L), GgmlType::kQ3_K);
  EXPECT_EQ(DefaultTensorType(FileType::kQ2_K_S), GgmlType::kQ2_K);
  EXPECT_EQ(DefaultTensorType(FileType::kBF16), GgmlType::kBF16);
}

TEST(FileType, OnlyImplementedTypesAreMarkedSupported) {
  EXPECT_TRUE(ParseFileType("Q6_K")->supported);
  EXPECT_FALSE(ParseFileType("IQ2_XXS")->supported);
  EXPECT_FALSE(ParseFileType("TQ1_0")->supported);
}

}  // namespace
}  // namespace quantfleet
