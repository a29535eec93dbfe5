"""A tiny OpenAI-compatible chat server on 127.0.0.1 that misbehaves on request, in its own process.

    python -m tests.faults.llm_server PORT LOG [--die-after N]

The last message's content picks the behaviour: `echo:TEXT` answers TEXT; `fail500` answers 500;
`badjson` answers 200 with a body cut off inside its JSON; `hang-body` sends the headers and then
nothing; `trickle` sends a whole answer one byte every 0.3 s; `half` sends half a body and kills its own process with SIGKILL (a server dying
mid-stream). With `--die-after N`, request N+1 does `half` whatever it asks. Each request is
appended to LOG as `got CONTENT` and, once its answer is written, `answered CONTENT`.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"requests": 0}


def completion(text: str) -> bytes:
    return json.dumps({
        "id": "x", "object": "chat.completion", "model": "fault-server",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, line: str) -> None:
        with LOCK, open(self.server.log_path, "a") as handle:
            handle.write(line + "\n")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        with LOCK:
            STATE["requests"] += 1
            number = STATE["requests"]
        self.log(f"got {content}")
        die_after = self.server.die_after
        if content == "half" or (die_after is not None and number > die_after):
            data = completion("this answer never arrives whole")
            self.head(200, len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if content == "fail500":
            return self.send(500, b'{"error": "boom"}', content)
        if content == "badjson":
            return self.send(200, completion("cut")[:40], content)
        if content == "trickle":  # a whole answer, one byte every 0.3 s: every read is quick, the answer is not
            data = completion("slowly")
            self.head(200, len(data))
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
            return self.log(f"answered {content}")
        if content == "hang-body":
            self.head(200, 1000)
            time.sleep(60)
            return None
        return self.send(200, completion(content.removeprefix("echo:")), content)

    def head(self, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def send(self, status: int, data: bytes, content: str) -> None:
        self.head(status, len(data))
        self.wfile.write(data)
        self.wfile.flush()
        self.log(f"answered {content}")


def main() -> None:
    port, log_path = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.log_path = log_path
    server.die_after = int(sys.argv[sys.argv.index("--die-after") + 1]) if "--die-after" in sys.argv else None
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
