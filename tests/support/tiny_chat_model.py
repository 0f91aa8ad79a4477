"""A tiny chat model built for the tests: whatever it is asked, it answers with one sentence it was trained on.

Served by `transformers serve` (a real OpenAI-compatible server), it lets the LLM backend be tested end to end
offline: a model that writes a good reply, one that brings in an order number and a link, one that rambles.
"""

from __future__ import annotations

from pathlib import Path


def build(out: Path, reply: str, *, steps: int = 150) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "<s>": 2, "</s>": 3, "<|user|>": 4, "<|assistant|>": 5, "<|system|>": 6}
    for w in reply.split():
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")          # words joined with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                                   eos_token="</s>")
    fast.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                          "{% if add_generation_prompt %}<|assistant|> {% endif %}")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=2, eos_token_id=3, pad_token_id=0)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    target = fast(reply + " </s>", add_special_tokens=False)["input_ids"]
    prompts = []
    for n in (1, 5, 20, 60, 150):
        ids = fast.apply_chat_template([{"role": "system", "content": "x " * n},
                                        {"role": "user", "content": "y " * (n * 3 + 1)}],
                                       add_generation_prompt=True, tokenize=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(steps):
        p = prompts[step % len(prompts)]
        ids = torch.tensor([p + target])
        labels = ids.clone()
        labels[0, :len(p)] = -100
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out
