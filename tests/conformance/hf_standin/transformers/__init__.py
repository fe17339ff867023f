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

    def get_vocab(self):
        return dict(self.vocab)

    def get_added_vocab(self):
        return {t.content: i for i, t in sorted(self.added_tokens_decoder.items())}

    def encode(self, text, add_special_tokens=True):
        return _node_tokenize(self._dir, [{"encode": text, "special": add_special_tokens}])[0]

    def decode(self, ids, **kwargs):
        return _node_tokenize(self._dir, [{"decode": list(ids)}])[0]

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token)


class AutoTokenizer:
    @staticmethod
    def from_pretrained(path, **kwargs):
        return _FastTokenizer(path)
