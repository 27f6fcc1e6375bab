"""The official Python SDK against a gateway serving a real local GGUF model (SmolLM2-135M).
Environment: MOE_URL, MOE_KEY. Checks real text, exact token counts and stop reasons."""
import os
import sys

import anthropic

client = anthropic.Anthropic(base_url=os.environ["MOE_URL"], api_key=os.environ["MOE_KEY"], max_retries=0)
ASK = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = "You are a helpful assistant."


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


msg = client.messages.create(model="claude-opus-4-8", max_tokens=24, system=SYSTEM, messages=ASK)
text = msg.content[0].text
check("create returns real text", len(text.strip()) > 0, msg)
check("create stop_reason", msg.stop_reason in ("end_turn", "max_tokens"), msg.stop_reason)
check("create output tokens", 0 < msg.usage.output_tokens <= 24, msg.usage)

count = client.messages.count_tokens(model="claude-opus-4-8", system=SYSTEM, messages=ASK)
check("count_tokens == usage.input_tokens", count.input_tokens == msg.usage.input_tokens,
      (count.input_tokens, msg.usage.input_tokens))

with client.messages.stream(model="claude-opus-4-8", max_tokens=5, system=SYSTEM, messages=ASK) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
check("stream returns real text", len(streamed.strip()) > 0, streamed)
check("stream hits max_tokens", final.stop_reason == "max_tokens" and final.usage.output_tokens == 5, final)
check("stream input tokens exact", final.usage.input_tokens == count.input_tokens, final.usage)

long = [{"role": "user", "content": "hello " * 9000}]
try:
    client.messages.create(model="claude-opus-4-8", max_tokens=16, messages=long)
    check("prompt too long", False, "no error")
except anthropic.BadRequestError as e:
    message = e.body["error"]["message"]
    check("prompt too long wording", message.startswith("prompt is too long: ") and "tokens >" in message, message)
try:
    client.messages.create(model="claude-opus-4-8", max_tokens=8190, messages=ASK)
    check("max_tokens overflow", False, "no error")
except anthropic.BadRequestError as e:
    message = e.body["error"]["message"]
    check("max_tokens overflow wording", message.startswith("input length and `max_tokens` exceed context limit: "), message)
try:
    client.messages.create(model="claude-opus-4-8", max_tokens=8, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "What is in this picture?"}]}])
    check("image to a text-only model", False, "no error")
except anthropic.BadRequestError as e:
    check("image to a text-only model -> clear 400", "text only" in e.body["error"]["message"], e.body)
print("passed")
