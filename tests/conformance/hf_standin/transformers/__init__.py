"""A stand-in for the parts of Hugging Face `transformers` that llama.cpp's
convert_hf_to_gguf.py uses, for the conversion conformance tests.

The package is not in the registries reached here. What the converter takes
from it only reads files:

- AutoConfig.from_pretrained(dir).to_dict() is the converter's own fallback:
  config.json as it is (no defaults filled in, so the result does not depend
  on a transformers version).
- AutoTokenizer.from_pretrained(dir) is a fast tokenizer read from
  tokenizer.json: the vocabulary with the added tokens, the added tokens'
  flags, and encode/decode, which run Hugging Face's tokenizers library
  (npm @huggingface/tokenizers) in Node.js through tokenize.mjs.
"""

import json
import os
import subprocess
from pathlib import Path

_HERE = Path(__file__).resolve().parent


class _Config:
    def __init__(self, d):
        self._d = d

    def to_dict(self):
        return dict(self._d)


class AutoConfig:
    @staticmethod
    def from_pretrained(path, **kwargs):
        with open(Path(path) / "config.json", encoding="utf-8") as f:
            return _Config(json.load(f))


class _AddedToken:
    def __init__(self, d):
        self.content = d["content"]
        self.special = bool(d.get("special", False))
        self.normalized = bool(d.get("normalized", not self.special))


def _node_tokenize(tokenizer_dir, requests):
    """Runs tokenize.mjs: encodes (with special tokens) or decodes in order."""
    script = _HERE / "tokenize.mjs"
    env = dict(os.environ)
    proc = subprocess.run(
        ["node", str(script), str(tokenizer_dir)],
        input=json.dumps(requests).encode(),
        capture_output=True,
        env=env,
        check=True,
        timeout=300,
    )
    return json.loads(proc.stdout)


class _FastTokenizer:
    is_fast = True

    def __init__(self, path):
        self._dir = Path(path)
        with open(self._dir / "tokenizer.json", encoding="utf-8") as f:
            j = json.load(f)
        self.vocab = dict(j["model"]["vocab"])
        self.added_tokens_decoder = {}
        for t in j.get("added_tokens", []):
            self.vocab[t["content"]] = t["id"]
            self.added_tokens_decoder[t["id"]] = _AddedToken(t)
        # The converter round-trips every added token through encode and
        # decode; answer those from two batched runs instead of one each.
        texts = [t.content for t in self.added_tokens_decoder.values()]
        encoded = _node_tokenize(self._dir, [{"encode": t, "special": False} for t in texts])
        decoded = _node_tokenize(self._dir, [{"decode": ids} for ids in encoded])
        self._encoded = {(t, False): ids for t, ids in zip(texts, encoded)}
        self._decoded = {tuple(ids): text for ids, text in zip(encoded, decoded)}

    def get_vocab(self):
        return dict(self.vocab)

    def get_added_vocab(self):
        return {t.content: i for i, t in sorted(self.added_tokens_decoder.items())}

    def encode(self, text, add_special_tokens=True):
        key = (text, bool(add_special_tokens))
        if key not in self._encoded:
            self._encoded[key] = _node_tokenize(self._dir, [{"encode": text, "special": add_special_tokens}])[0]
        return list(self._encoded[key])

    def decode(self, ids, **kwargs):
        key = tuple(ids)
        if key not in self._decoded:
            self._decoded[key] = _node_tokenize(self._dir, [{"decode": list(ids)}])[0]
        return self._decoded[key]

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token)


class AutoTokenizer:
    @staticmethod
    def from_pretrained(path, **kwargs):
        return _FastTokenizer(path)
