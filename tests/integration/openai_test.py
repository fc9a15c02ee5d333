"""The OpenAI-compatible HTTP front (issue #15) as OpenAI clients use it: the official `openai`
Python SDK from PyPI and curl, against the real server with two tenants' API keys.

    openai_test.py TROUPE_SERVER        (run by scripts/python/venv-run.sh; ctest integration.openai)

Checks:
  - GET /v1/models lists the served model; /health answers 200; an unknown route 404 in
    OpenAI's error shape;
  - chat completions, whole and streamed (the first chunk names the assistant role, chunks
    carry the text, the usage chunk comes last with prompt_tokens_details.cached_tokens);
  - a 20-turn conversation resent whole each turn, as OpenAI clients do: the cached prompt
    tokens grow turn over turn and cover most of the last prompt (the prefix cache serves it);
  - completions with text and with token ids, and logprobs in both endpoints' shapes;
  - errors as the SDK raises them: no key or a wrong key 401 (AuthenticationError), a bad field
    400 naming it, an unknown model 404, another tenant's character 404 (ids cannot be probed);
  - character_id chats as the caller's stored character; session_id continues a durable
    session, which then holds the turn (GetSession over gRPC);
  - curl -N streams server-sent events ending in `data: [DONE]`; a chunked body is refused (411),
    a compressed one too (415);
  - a client that leaves mid-stream frees its request (troupe:num_requests_running back to 0);
  - with --tls-cert/--tls-key the front speaks HTTPS (the SDK with the test's certificate).
"""
import http.client as http_client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import grpc
import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "reliability"))
import troupe_rig as rig  # noqa: E402

CARD = os.path.join(rig.REPO, "tests", "testdata", "cards", "v2_lighthouse_keeper.json")


def http(method, url, body=None, headers=None):
    """(status, parsed JSON or text) without raising on HTTP errors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def main():
    server_binary = sys.argv[1]
    check = rig.Checks()
    with tempfile.TemporaryDirectory(prefix="troupe-openai-") as tmp:
        keys = rig.write_keys_file(os.path.join(tmp, "keys"), ["alpha", "beta"])
        server = rig.Server(server_binary, os.path.join(tmp, "data"), os.path.join(tmp, "server.log"),
                            extra_args=["--threads", "2", "--api-keys", os.path.join(tmp, "keys")])
        server.start()
        try:
            run(server, keys, tmp, check)
        finally:
            server.stop()
        https(server_binary, tmp, check)
    return check.exit_code()


def https(server_binary, tmp, check):
    """With --tls-cert/--tls-key the HTTP front speaks HTTPS with the gRPC port's certificate."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    server = rig.Server(server_binary, os.path.join(tmp, "data-tls"), os.path.join(tmp, "server-tls.log"),
                        extra_args=["--threads", "2", "--tls-cert", cert, "--tls-key", key])
    server.start()
    try:
        client = openai.OpenAI(base_url=f"https://127.0.0.1:{server.http_port}/v1", api_key="none", max_retries=0,
                               http_client=openai.DefaultHttpxClient(verify=cert))
        reply = client.chat.completions.create(model=client.models.list().data[0].id, max_tokens=4,
                                               messages=[{"role": "user", "content": "Hi"}])
        check(reply.choices[0].message.content is not None, "HTTPS: a chat completion over TLS")
        try:
            status, _ = http("GET", f"http://127.0.0.1:{server.http_port}/health")
        except (OSError, http_client.HTTPException):  # the TLS port closes a plain request
            status = None
        check(status != 200, f"HTTPS: plain HTTP is not served on the TLS port ({status})")
    finally:
        server.stop()


def run(server, keys, tmp, check):
    base = f"http://127.0.0.1:{server.http_port}"
    check(server.http_port is not None, "the server logs its HTTP port")
    alpha = openai.OpenAI(base_url=base + "/v1", api_key=keys["alpha"], max_retries=0, timeout=300)
    beta = openai.OpenAI(base_url=base + "/v1", api_key=keys["beta"], max_retries=0, timeout=300)

    # Models, health, unknown routes.
    models = alpha.models.list().data
    check(len(models) == 1 and models[0].id, f"/v1/models lists one model: {models}")
    model = models[0].id
    status, _ = http("GET", base + "/health")
    check(status == 200, f"/health is 200 when ready ({status})")
    status, body = http("GET", base + "/v1/nothing")
    check(status == 404 and isinstance(body, dict) and "error" in body, f"unknown route: 404 with an error object ({status}, {body})")

    # A whole chat completion.
    messages = [{"role": "system", "content": "You are a friendly lighthouse keeper."},
                {"role": "user", "content": "Hello! What do you see tonight?"}]
    reply = alpha.chat.completions.create(model=model, messages=messages, max_tokens=24, seed=1)
    choice = reply.choices[0]
    check(reply.object == "chat.completion" and reply.id.startswith("chatcmpl-"), f"a chat.completion object: {reply.id}")
    check(choice.message.role == "assistant" and choice.message.content.strip() != "", f"a reply: {choice.message!r}")
    check(choice.finish_reason in ("stop", "length"), f"finish_reason: {choice.finish_reason}")
    check(reply.usage.prompt_tokens > 10 and 0 < reply.usage.completion_tokens <= 24, f"usage: {reply.usage}")

    # Streamed, with usage.
    stream = alpha.chat.completions.create(model=model, messages=messages, max_tokens=24, stream=True,
                                           stream_options={"include_usage": True})
    chunks = list(stream)
    check(chunks and chunks[0].choices and chunks[0].choices[0].delta.role == "assistant",
          "the first chunk names the assistant role")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text.strip() != "", f"streamed text: {text!r}")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finishes in (["stop"], ["length"]), f"one chunk carries the finish reason: {finishes}")
    usage = chunks[-1].usage
    check(not chunks[-1].choices and usage is not None and usage.prompt_tokens == reply.usage.prompt_tokens,
          f"the last chunk carries the usage: {usage}")
    check(usage is not None and usage.prompt_tokens_details.cached_tokens >= 16,
          f"the same prompt again is served from the prefix cache: {usage}")
    # troupe's own field reaches the SDK's object (no host KV tier here: nothing restored).
    check(usage is not None and getattr(usage.prompt_tokens_details, "restored_tokens", None) == 0,
          f"prompt_tokens_details.restored_tokens: {usage}")

    # 20 turns, the whole history resent each time.
    history = [{"role": "system", "content": "You are Mira, a cheerful bard. Answer in one sentence."}]
    cached, prompts = [], []
    lines = ["Hi Mira!", "Where are you from?", "Sing me something.", "What instrument is that?",
             "Who taught you?", "Do you travel alone?", "What is your favourite town?", "Why?",
             "Tell me about the sea.", "Have you met a dragon?", "What did it say?", "Were you afraid?",
             "What do you eat on the road?", "Do you like rain?", "Sing about rain.", "Lovely!",
             "Where next?", "Can I come?", "What should I bring?", "Goodbye, Mira."]
    for line in lines:
        history.append({"role": "user", "content": line})
        turn = alpha.chat.completions.create(model=model, messages=history, max_tokens=20, temperature=0)
        history.append({"role": "assistant", "content": turn.choices[0].message.content})
        cached.append(turn.usage.prompt_tokens_details.cached_tokens)
        prompts.append(turn.usage.prompt_tokens)
    print("20 turns: prompt tokens", prompts)
    print("20 turns: cached tokens", cached)
    check(all(b >= a for a, b in zip(cached[1:], cached[2:])), f"cached tokens never fall from turn 2 on: {cached}")
    check(cached[-1] > cached[1], f"cached tokens grow over the conversation: {cached}")
    check(cached[-1] >= 0.7 * prompts[-1], f"the last turn's prompt is mostly cached: {cached[-1]} of {prompts[-1]}")

    # Completions, text and token ids, with logprobs.
    completion = alpha.completions.create(model=model, prompt="Once upon a time", max_tokens=8, logprobs=2,
                                          temperature=0)
    c = completion.choices[0]
    check(completion.object == "text_completion" and c.text != "", f"a text completion: {c.text!r}")
    check(c.logprobs is not None and len(c.logprobs.tokens) == completion.usage.completion_tokens
          and all(len(t) == 2 for t in c.logprobs.top_logprobs), f"completion logprobs: {c.logprobs}")
    ids = alpha.completions.create(model=model, prompt=[1, 2, 3, 4], max_tokens=4, temperature=0)
    check(ids.usage.prompt_tokens == 4, f"a prompt of token ids: {ids.usage}")
    chat_lp = alpha.chat.completions.create(model=model, messages=messages, max_tokens=4, logprobs=True,
                                            top_logprobs=2)
    content = chat_lp.choices[0].logprobs.content
    check(len(content) == chat_lp.usage.completion_tokens and all(len(t.top_logprobs) == 2 for t in content),
          f"chat logprobs: {content}")

    # Errors as the SDK raises them.
    anonymous = openai.OpenAI(base_url=base + "/v1", api_key="not-a-key", max_retries=0)
    try:
        anonymous.chat.completions.create(model=model, messages=messages, max_tokens=4)
        check(False, "a wrong key is refused")
    except openai.AuthenticationError as error:
        check(error.status_code == 401, f"a wrong key: 401 ({error.status_code})")
    status, body = http("POST", base + "/v1/chat/completions", json.dumps({"messages": messages}).encode(),
                        {"Content-Type": "application/json"})
    check(status == 401 and body["error"]["type"] == "authentication_error", f"no key: 401 ({status}, {body})")
    try:
        alpha.chat.completions.create(model=model, messages=messages, temperature=500)
        check(False, "temperature 500 is refused")
    except openai.BadRequestError as error:
        check(error.status_code == 400 and "temperature" in str(error), f"a bad field: 400 naming it ({error})")
    try:
        alpha.chat.completions.create(model="gpt-4o", messages=messages)
        check(False, "an unknown model is refused")
    except openai.NotFoundError as error:
        check(error.status_code == 404 and model in str(error), f"an unknown model: 404 naming the served one ({error})")
    try:
        alpha.chat.completions.create(model=model, messages=[])
        check(False, "no messages is refused")
    except openai.BadRequestError as error:
        check("messages" in str(error), f"no messages: 400 ({error})")

    # A stored character of tenant alpha, and a durable session with it (over gRPC).
    protos = rig.Protos(os.path.join(tmp, "protos"))
    channel = grpc.insecure_channel(server.address)
    stub = rig.RolePlay(channel, protos)
    alpha_md = [("authorization", "Bearer " + keys["alpha"])]
    with open(CARD, "rb") as f:
        character = stub.CreateCharacter(protos.CreateCharacterRequest(card_json=f.read()), metadata=alpha_md, timeout=60)
    as_character = alpha.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Good evening! Who are you?"}], max_tokens=24,
        extra_body={"character_id": character.character_id, "user_name": "Robin"})
    check(as_character.choices[0].message.content.strip() != "", "character_id: a reply as the stored character")
    check(as_character.usage.prompt_tokens > reply.usage.prompt_tokens,
          f"character_id: the card's preamble is in the prompt ({as_character.usage.prompt_tokens} tokens)")
    try:
        beta.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                     extra_body={"character_id": character.character_id})
        check(False, "another tenant's character is refused")
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"another tenant's character: 404 ({error.status_code})")

    session = stub.CreateSession(protos.CreateSessionRequest(character_id=character.character_id),
                                 metadata=alpha_md, timeout=60)
    turn = alpha.chat.completions.create(model=model, messages=[{"role": "user", "content": "Tell me about the lamp."}],
                                         max_tokens=16, extra_body={"session_id": session.session_id})
    stored = stub.GetSession(protos.GetSessionRequest(session_id=session.session_id), metadata=alpha_md, timeout=60)
    contents = [m.content for m in stored.history]
    check("Tell me about the lamp." in contents and turn.choices[0].message.content.strip() in
          [c.strip() for c in contents], f"session_id: the session holds the turn ({contents[-2:]})")
    try:
        beta.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                     extra_body={"session_id": session.session_id})
        check(False, "another tenant's session is refused")
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"another tenant's session: 404 ({error.status_code})")
    channel.close()

    # curl -N: server-sent events ending in [DONE].
    body = json.dumps({"model": model, "messages": messages, "max_tokens": 8, "stream": True})
    out = subprocess.run(["curl", "-sS", "-N", base + "/v1/chat/completions", "-H", "Content-Type: application/json",
                          "-H", "Authorization: Bearer " + keys["alpha"], "-d", body],
                         capture_output=True, text=True, timeout=120).stdout
    events = [line for line in out.split("\n") if line]
    check(events and all(e.startswith("data: ") for e in events), f"curl: every line is a data event: {out[:300]!r}")
    check(events and events[-1] == "data: [DONE]", f"curl: the stream ends with [DONE]: {events[-1:]}")

    # Bodies of unknown or inflatable size are refused before they are read.
    chunked = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", base + "/v1/chat/completions",
                              "-H", "Transfer-Encoding: chunked", "-H", "Authorization: Bearer " + keys["alpha"],
                              "-d", json.dumps({"messages": messages})], capture_output=True, text=True, timeout=60)
    check(chunked.stdout == "411", f"a chunked body: 411 ({chunked.stdout})")
    status, body = http("POST", base + "/v1/chat/completions", b"\x1f\x8b\x08\x00",
                        {"Content-Encoding": "gzip", "Authorization": "Bearer " + keys["alpha"]})
    check(status == 415, f"a compressed body: 415 ({status}, {body})")

    # A client that leaves mid-stream: the request is cancelled, not left running.
    stream = alpha.chat.completions.create(model=model, messages=messages, max_tokens=2000, stream=True,
                                           extra_body={"ignore_eos": True})
    for i, _ in enumerate(stream):
        if i >= 2:
            break
    stream.close()
    deadline = time.monotonic() + 30
    running = None
    while time.monotonic() < deadline:
        running = server.metrics().get("troupe:num_requests_running")
        if running == 0:
            break
        time.sleep(0.2)
    check(running == 0, f"a client that leaves frees its request (num_requests_running {running})")


if __name__ == "__main__":
    sys.exit(main())
