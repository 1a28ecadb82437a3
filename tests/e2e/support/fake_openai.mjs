// A fake OpenAI Chat Completions upstream, for tests and benchmarks (the paid API cannot run
// here): every POST is answered at once with a chat.completion in the real wire format, its
// assistant text `answer(lastUserMessage, callNumber)` and its usage `usage`. When `answer`
// returns null the call fails as OpenAI's do: 500 with an error object.
// Resolves to {port, calls(), close()}.
import { createServer } from "node:http";

export async function fakeOpenAI(answer, usage = { prompt_tokens: 40, completion_tokens: 200 }) {
  let calls = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      calls++;
      const request = JSON.parse(body);
      const content = answer(request.messages.at(-1).content, calls);
      if (content === null) {
        res.writeHead(500, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { message: "The server had an error", type: "server_error", param: null, code: null } }));
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({
        id: `chatcmpl-${calls}`, object: "chat.completion", created: 1764300000 + calls, model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null },
                    finish_reason: "stop", logprobs: null }],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, calls: () => calls, close: () => server.close() };
}
