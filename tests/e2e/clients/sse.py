"""An outside Server-Sent Events client (sseclient-py over requests) for the
stream tests: reads URL with an API key, optionally resuming after
Last-Event-ID, and prints one JSON line per event ({"id", "type",
"event_id", "job_id"}), then {"end": true} when the server closes the stream.

    sse.py URL KEY [LAST_EVENT_ID] [STOP_AFTER] [READY_FILE]

With STOP_AFTER > 0 it hangs up after that many events instead. With
READY_FILE it creates that file once the server has answered (the stream's
starting point is fixed then), for a test that must act only after it."""

import json
import sys

import requests
import sseclient


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    last = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    stop_after = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ready = sys.argv[5] if len(sys.argv) > 5 else None
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if last is not None:
        headers["Last-Event-ID"] = last
    resp = requests.get(url, headers=headers, stream=True, timeout=(5, 60))
    resp.raise_for_status()
    if ready:
        open(ready, "w").close()
    seen = 0
    for event in sseclient.SSEClient(resp).events():
        envelope = json.loads(event.data)
        line = {
            "id": event.id,
            "type": envelope["type"],
            "event_id": envelope["event_id"],
            "job_id": envelope["job_id"],
        }
        print(json.dumps(line), flush=True)
        seen += 1
        if stop_after and seen >= stop_after:
            resp.close()
            return
    print(json.dumps({"end": True}), flush=True)


if __name__ == "__main__":
    main()
