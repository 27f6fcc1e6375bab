"""The official Python SDK against a gateway serving a real local GGUF model (SmolLM2-135M).
Environment: MOE_URL, MOE_KEY. Checks real text, exact token counts and stop reasons."""
import os
import re
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

# Tools: SmolLM2's template cannot render them, so the gateway puts them in the system prompt;
# tool_choice any/tool is enforced by constrained decoding, so even 135M parameters give a valid call.
WEATHER = {"name": "get_weather", "description": "Get the current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                            "required": ["city"]}}
CLOCK = {"name": "get_time", "description": "Get the time in a time zone.",
         "input_schema": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
                          "required": ["zone"]}}
WEATHER_ASK = [{"role": "user", "content": "What is the weather in Paris?"}]

forced = client.messages.create(model="claude-opus-4-8", max_tokens=60, tools=[WEATHER, CLOCK],
                                tool_choice={"type": "tool", "name": "get_weather"}, messages=WEATHER_ASK)
calls = [b for b in forced.content if b.type == "tool_use"]
check("forced tool: stop_reason tool_use", forced.stop_reason == "tool_use", forced)
check("forced tool: the named tool with schema-valid input",
      len(calls) == 1 and calls[0].name == "get_weather" and isinstance(calls[0].input.get("city"), str)
      and set(calls[0].input) == {"city"}, forced.content)
check("forced tool: id usable in a tool_result", re.fullmatch(r"[A-Za-z0-9_-]+", calls[0].id) is not None, calls[0].id)
counted = client.messages.count_tokens(model="claude-opus-4-8", tools=[WEATHER, CLOCK],
                                       tool_choice={"type": "tool", "name": "get_weather"}, messages=WEATHER_ASK)
check("count_tokens with tools == usage", counted.input_tokens == forced.usage.input_tokens,
      (counted.input_tokens, forced.usage.input_tokens))

anyway = client.messages.create(model="claude-opus-4-8", max_tokens=60, tools=[WEATHER, CLOCK],
                                tool_choice={"type": "any"}, messages=[{"role": "user", "content": "What time is it?"}])
calls = [b for b in anyway.content if b.type == "tool_use"]
check("any tool: a valid call", anyway.stop_reason == "tool_use" and len(calls) == 1 and (
    (calls[0].name == "get_weather" and isinstance(calls[0].input.get("city"), str))
    or (calls[0].name == "get_time" and calls[0].input.get("zone") in ("UTC", "CET"))), anyway.content)

deltas = []
with client.messages.stream(model="claude-opus-4-8", max_tokens=60, tools=[WEATHER],
                            tool_choice={"type": "tool", "name": "get_weather"}, messages=WEATHER_ASK) as stream:
    for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            deltas.append(event.delta.partial_json)
    streamed_call = stream.get_final_message()
check("streamed forced tool: input_json_delta", len(deltas) > 0 and "city" in "".join(deltas), deltas)
check("streamed forced tool: final message", streamed_call.stop_reason == "tool_use"
      and streamed_call.content[-1].type == "tool_use" and isinstance(streamed_call.content[-1].input.get("city"), str),
      streamed_call)

call = streamed_call.content[-1]
round_trip = WEATHER_ASK + [
    {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees and sunny"}]},
]
answer = client.messages.create(model="claude-opus-4-8", max_tokens=30, tools=[WEATHER], tool_choice={"type": "none"},
                                messages=round_trip)
check("tool_result fed back, none honoured: text answer",
      answer.stop_reason in ("end_turn", "max_tokens") and all(b.type == "text" for b in answer.content)
      and len(answer.content[0].text.strip()) > 0, answer)
counted = client.messages.count_tokens(model="claude-opus-4-8", tools=[WEATHER], tool_choice={"type": "none"},
                                       messages=round_trip)
check("count_tokens of a tool round trip == usage", counted.input_tokens == answer.usage.input_tokens,
      (counted.input_tokens, answer.usage.input_tokens))
try:
    client.messages.create(model="claude-opus-4-8", max_tokens=8, tools=[WEATHER],
                           tool_choice={"type": "tool", "name": "nope"}, messages=WEATHER_ASK)
    check("unknown forced tool", False, "no error")
except anthropic.BadRequestError as e:
    check("unknown forced tool -> clear 400", "not in tools" in e.body["error"]["message"], e.body)
print("passed")
