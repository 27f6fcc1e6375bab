"""Drives the gateway with the official `anthropic` Python SDK. Run by tests/e2e/clients.rs.

Environment: MOE_URL, MOE_KEY, FLAVOR (openai|anthropic: which fake upstream is behind it).
Every check asserts on what the fake upstream computed from *our* input, so it cannot pass
unless the request and the answer crossed the gateway intact. Prints one line per check.
"""
import json
import os
import sys

import anthropic

URL, KEY, FLAVOR = os.environ["MOE_URL"], os.environ["MOE_KEY"], os.environ["FLAVOR"]
client = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)
WEATHER = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


# create (non-streaming)
msg = client.messages.create(model="claude-opus-4-8", max_tokens=64,
                             messages=[{"role": "user", "content": "say pong"}])
check("create text", msg.content[0].text == "pong: say pong", msg)
check("create stop_reason", msg.stop_reason == "end_turn", msg.stop_reason)
check("create usage", msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage)
check("create model echoed", msg.model == "claude-opus-4-8", msg.model)
check("create request id", bool(msg._request_id) and msg._request_id.startswith("req_"), msg._request_id)

# stream helper
with client.messages.stream(model="claude-sonnet-5", max_tokens=64,
                            messages=[{"role": "user", "content": "stream please"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check("stream text", text == "pong: stream please", text)
check("stream final message", final.content[0].text == text and final.stop_reason == "end_turn", final)
check("stream usage", final.usage.output_tokens > 0 and final.usage.input_tokens > 0, final.usage)

# raw events
events = [e.type for e in client.messages.create(
    model="claude-opus-4-8", max_tokens=64, stream=True,
    messages=[{"role": "user", "content": "raw"}])]
check("raw event order", events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
      and "content_block_start" in events and "content_block_stop" in events, events)

# thinking
with client.messages.stream(model="claude-opus-4-8", max_tokens=64,
                            thinking={"type": "enabled", "budget_tokens": 32},
                            messages=[{"role": "user", "content": "think hard"}]) as stream:
    final = stream.get_final_message()
kinds = [b.type for b in final.content]
check("thinking block", kinds == ["thinking", "text"] and final.content[0].thinking == "Let me think."
      and final.content[0].signature != "" and final.content[1].text == "42", final.content)

# tool use round trip (streamed)
with client.messages.stream(model="claude-opus-4-8", max_tokens=64, tools=WEATHER,
                            messages=[{"role": "user", "content": "what is the weather?"}]) as stream:
    deltas = [e.delta.partial_json for e in stream if e.type == "content_block_delta"
              and e.delta.type == "input_json_delta"]
    final = stream.get_final_message()
call = final.content[-1]
check("tool_use streamed in pieces", len(deltas) >= 2, deltas)
check("tool_use block", call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}, call)
check("tool_use stop_reason", final.stop_reason == "tool_use", final.stop_reason)
answer = client.messages.create(model="claude-opus-4-8", max_tokens=64, tools=WEATHER, messages=[
    {"role": "user", "content": "what is the weather?"},
    {"role": "assistant", "content": [b.model_dump() for b in final.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}]},
])
check("tool_result round trip", answer.content[0].text == "The file says: sunny, 21 C", answer.content)

# count_tokens
count = client.messages.count_tokens(model="claude-opus-4-8", tools=WEATHER,
                                     messages=[{"role": "user", "content": "count me"}])
if FLAVOR == "anthropic":
    check("count_tokens forwarded", count.input_tokens == 1001, count)
else:
    check("count_tokens estimated", count.input_tokens > 10, count)

# models, with pagination
page = client.models.list(limit=1)
check("models first page", len(page.data) == 1 and page.has_more, page)
ids = [m.id for m in client.models.list(limit=1)]  # auto-pagination follows last_id
check("models pagination", ids == ["claude-moe-native", "claude-moe-reasoning", "claude-moe-orchestrated"], ids)
one = client.models.retrieve("claude-moe-reasoning")
check("models retrieve", one.display_name.startswith("MoE Reasoning"), one)

# errors
try:
    anthropic.Anthropic(base_url=URL, api_key="moe-sk-wrong", max_retries=0).messages.create(
        model="claude-opus-4-8", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    check("wrong key", False, "no error")
except anthropic.AuthenticationError as e:
    check("wrong key -> AuthenticationError", e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body)
try:
    with client.messages.stream(model="claude-opus-4-8", max_tokens=64,
                                messages=[{"role": "user", "content": "fail mid-stream"}]) as stream:
        for _ in stream:
            pass
    check("mid-stream error", False, "no error")
except anthropic.APIStatusError as e:
    check("mid-stream error event", "error" in str(e.body) or e.status_code >= 500, e)
except anthropic.APIError as e:
    check("mid-stream error event", True)
try:
    client.messages.create(model="claude-opus-4-8", max_tokens=8, messages=[])
    check("bad request", False, "no error")
except anthropic.BadRequestError as e:
    check("empty messages -> BadRequestError", e.body["error"]["type"] == "invalid_request_error", e.body)

print(json.dumps({"passed": True}))
