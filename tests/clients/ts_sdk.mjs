// Drives the gateway with the official @anthropic-ai/sdk. Run by tests/e2e/clients.rs.
// Environment: MOE_URL, MOE_KEY, FLAVOR, MOE_NODE_DIR (where the SDK is installed).
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const require = createRequire(process.env.MOE_NODE_DIR + '/');
const sdk = require('@anthropic-ai/sdk');
const Anthropic = sdk.Anthropic ?? sdk.default;
const { MOE_URL: URL, MOE_KEY: KEY, FLAVOR } = process.env;
const client = new Anthropic({ baseURL: URL, apiKey: KEY, maxRetries: 0 });
const WEATHER = [{
  name: 'get_weather', description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];
const ok = (name) => console.log(`ok   ${name}`);

const msg = await client.messages.create({ model: 'claude-opus-4-8', max_tokens: 64, messages: [{ role: 'user', content: 'say pong' }] });
assert.equal(msg.content[0].text, 'pong: say pong'); ok('create text');
assert.equal(msg.stop_reason, 'end_turn'); ok('create stop_reason');
assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0); ok('create usage');

const stream = client.messages.stream({ model: 'claude-sonnet-5', max_tokens: 64, messages: [{ role: 'user', content: 'stream please' }] });
let text = '';
stream.on('text', (t) => { text += t; });
const final = await stream.finalMessage();
assert.equal(text, 'pong: stream please'); ok('stream text');
assert.equal(final.content[0].text, text); ok('stream final message');

const thinking = await client.messages.stream({ model: 'claude-opus-4-8', max_tokens: 64, thinking: { type: 'enabled', budget_tokens: 32 },
  messages: [{ role: 'user', content: 'think hard' }] }).finalMessage();
assert.deepEqual(thinking.content.map((b) => b.type), ['thinking', 'text']);
assert.equal(thinking.content[0].thinking, 'Let me think.');
assert.ok(thinking.content[0].signature.length > 0); ok('thinking block with signature');

const toolStream = client.messages.stream({ model: 'claude-opus-4-8', max_tokens: 64, tools: WEATHER, messages: [{ role: 'user', content: 'what is the weather?' }] });
const pieces = [];
toolStream.on('streamEvent', (e) => { if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') pieces.push(e.delta.partial_json); });
const toolFinal = await toolStream.finalMessage();
const call = toolFinal.content.at(-1);
assert.ok(pieces.length >= 2); ok('tool input streamed in pieces');
assert.equal(call.type, 'tool_use'); assert.equal(call.name, 'get_weather');
assert.deepEqual(call.input, { city: 'Paris' }); ok('tool_use block');
assert.equal(toolFinal.stop_reason, 'tool_use'); ok('tool_use stop_reason');
const answer = await client.messages.create({ model: 'claude-opus-4-8', max_tokens: 64, tools: WEATHER, messages: [
  { role: 'user', content: 'what is the weather?' },
  { role: 'assistant', content: toolFinal.content },
  { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21 C' }] },
] });
assert.equal(answer.content[0].text, 'The file says: sunny, 21 C'); ok('tool_result round trip');

const count = await client.messages.countTokens({ model: 'claude-opus-4-8', tools: WEATHER, messages: [{ role: 'user', content: 'count me' }] });
if (FLAVOR === 'anthropic') assert.equal(count.input_tokens, 1001); else assert.ok(count.input_tokens > 10);
ok('count_tokens');

const ids = [];
for await (const m of client.models.list({ limit: 1 })) ids.push(m.id);
assert.deepEqual(ids, ['claude-moe-native', 'claude-moe-reasoning', 'claude-moe-orchestrated']); ok('models pagination');

const bad = new Anthropic({ baseURL: URL, apiKey: 'moe-sk-wrong', maxRetries: 0 });
await assert.rejects(bad.messages.create({ model: 'x', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
  (e) => e instanceof sdk.AuthenticationError && e.status === 401); ok('wrong key -> AuthenticationError');

await assert.rejects(
  client.messages.stream({ model: 'claude-opus-4-8', max_tokens: 64, messages: [{ role: 'user', content: 'fail mid-stream' }] }).finalMessage(),
  (e) => e instanceof sdk.APIError); ok('mid-stream error event -> APIError');

console.log(JSON.stringify({ passed: true }));
