"""Tokenizer metadata: a byte-level BPE vocabulary with its merges, token types, pre-tokenizer name, special ids,
BOS rule and chat template, as llama.cpp reads them."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

from gguf import GGUFWriter, TokenType

from tunelab.export.errors import ExportError
from tunelab.export.files import read_json

if TYPE_CHECKING:  # imported where used: `tunelab.export.gguf` loads without torch or transformers
    from transformers import PreTrainedTokenizerBase

# llama.cpp names a BPE pre-tokenizer by hashing the ids of this text (convert_hf_to_gguf.py, get_vocab_base_pre).
CHECK_TEXT = ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ "
              "🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
              "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
              "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL")

# Hashes of CHECK_TEXT for the tokenizers of the model families tunelab maps (values from llama.cpp).
KNOWN_PRE: dict[str, str] = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
}

# Splitting rules llama.cpp implements, recognised from the tokenizer.json when the hash is not a known model's:
# a plain byte-level pre-tokenizer uses GPT-2's regex.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Tokens that end a chat turn in the templates of the families we map (llama.cpp's eot).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    """The folder's tokenizer, or an ExportError naming the folder."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise ExportError(f"{model_dir}: no tokenizer could be loaded ({err}); the folder needs tokenizer.json "
                          "and tokenizer_config.json as save_pretrained writes them") from err


def _tokenizer_json(model_dir: Path) -> dict:
    return read_json(model_dir / "tokenizer.json", "the GGUF writer reads the fast tokenizer's vocabulary and "
                     "merges from it (save the tokenizer with save_pretrained from a fast tokenizer)")


def _has_byte_level(node: dict | None) -> bool:
    if not node:
        return False
    if node.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(child) for child in node.get("pretokenizers", []))


def pre_tokenizer_name(tokenizer: PreTrainedTokenizerBase, spec: dict, where: Path) -> str:
    """llama.cpp's name for how this tokenizer splits text before BPE (tokenizer.ggml.pre)."""
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as qwen2_split

    digest = sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    if digest in KNOWN_PRE:
        return KNOWN_PRE[digest]
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    patterns = {str(p.get("pattern", {}).get("Regex")) for p in pre.get("pretokenizers", [])
                if p.get("type") == "Split"}
    if qwen2_split in patterns:
        return "qwen2"
    if _LLAMA3_SPLIT in patterns:
        return "llama-bpe"
    raise ExportError(f"{where}: the pre-tokenizer (check hash {digest}) is none that llama.cpp names and tunelab "
                      "knows (smollm, llama-bpe, qwen2, gpt-2); llama.cpp would split text differently from training")


def _tokens_and_types(tokenizer: PreTrainedTokenizerBase, size: int) -> tuple[list[str], list[int]]:
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(TokenType.NORMAL)
    return tokens, types


def adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when a plain encode starts with BOS (the rule the Ollama Modelfile uses too)."""
    return tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]


def adds_eos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when a plain encode ends with EOS."""
    return tokenizer.eos_token_id is not None and tokenizer("a")["input_ids"][-1:] == [tokenizer.eos_token_id]


def eot_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that ends a chat turn, when the vocabulary has one of the known ones."""
    vocab = tokenizer.get_vocab()
    return next((vocab[t] for t in END_OF_TURN if t in vocab), None)


def add_vocab(writer: GGUFWriter, tokenizer: PreTrainedTokenizerBase, model_dir: Path, vocab_size: int) -> None:
    """Write the tokenizer metadata for a byte-level BPE tokenizer padded to the model's vocab_size."""
    spec = _tokenizer_json(model_dir)
    model = spec.get("model", {})
    where = model_dir / "tokenizer.json"
    if model.get("type") != "BPE" or not (_has_byte_level(spec.get("pre_tokenizer")) or
                                          _has_byte_level(spec.get("decoder"))):
        raise ExportError(f"{where}: a {model.get('type')} tokenizer without byte-level pre-tokenization; tunelab's "
                          "GGUF writer handles byte-level BPE vocabularies (GPT-2 style: SmolLM, Llama 3, Qwen)")
    if len(tokenizer) > vocab_size:
        raise ExportError(f"{where}: {len(tokenizer)} tokens but config.json vocab_size is {vocab_size}; resize the "
                          "model's embeddings to the tokenizer (model.resize_token_embeddings) before export")
    pre = pre_tokenizer_name(tokenizer, spec, where)
    tokens, types = _tokens_and_types(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])])
    for add, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                          (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id),
                          (writer.add_eot_token_id, eot_id(tokenizer))):
        if token_id is not None:
            add(int(token_id))
    writer.add_add_bos_token(adds_bos(tokenizer))
    writer.add_add_eos_token(adds_eos(tokenizer))
    if isinstance(tokenizer.chat_template, str):
        writer.add_chat_template(tokenizer.chat_template)
