"""What the batch tests share: the chat-capable counting model's spec."""

from __future__ import annotations

from ingot.registry.synthetic import CHAT_TEMPLATES, SyntheticSpec

COUNTER = SyntheticSpec(counting=True, chat_template=CHAT_TEMPLATES["chatml"], name="counter")
