// Encodes and decodes with Hugging Face's tokenizers (npm
// @huggingface/tokenizers, unpacked where QUANTFLEET_HF_TOKENIZERS points)
// for the transformers stand-in: reads a JSON list of requests on stdin,
// [{"encode": TEXT, "special": BOOL} | {"decode": [IDS]}], and prints the
// list of results. Usage: node tokenize.mjs TOKENIZER_DIR
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = process.env.QUANTFLEET_HF_TOKENIZERS;
if (!root) throw new Error("QUANTFLEET_HF_TOKENIZERS must name the unpacked @huggingface/tokenizers package");
const { Tokenizer } = await import(join(root, "dist", "tokenizers.mjs"));

const dir = process.argv[2];
const tokenizerJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
let config = {};
try {
  config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
} catch {
  config = {};
}
const tokenizer = new Tokenizer(tokenizerJson, config);
const requests = JSON.parse(readFileSync(0, "utf8"));
const results = requests.map((r) =>
  "encode" in r
    ? tokenizer.encode(r.encode, { add_special_tokens: r.special }).ids.map(Number)
    : tokenizer.decode(r.decode, { skip_special_tokens: false, clean_up_tokenization_spaces: false }),
);
process.stdout.write(JSON.stringify(results));
