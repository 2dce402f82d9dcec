"""Names the real-model tier shares: the served model, its window, the conversations it is asked."""

from __future__ import annotations

MODEL = "smollm2"
NUM_CTX = 2048
# SmolLM2's special tokens (its BOS is <|im_start|>, its EOS the end-of-turn <|im_end|>).
BOS = "<|im_start|>"
EOS = "<|im_end|>"
SPECIALS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")

# Questions SmolLM2-135M answers briefly, ending on its own end-of-turn token within ANSWER_TOKENS.
SHORT_ANSWERS = ("What is 2+2?", "Name three colors.", "Write a haiku about the sea.")
ANSWER_TOKENS = 96
