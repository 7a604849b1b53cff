// Server-Sent Events read with fetch(), because EventSource cannot send the
// Authorization header: a text/event-stream parser (the WHATWG rules) and a
// loop that follows a stream, reconnecting with `Last-Event-ID` so nothing
// is missed or repeated after a dropped connection.

import { sleep } from './util.js';

/**
 * A parser fed text chunks (split anywhere); calls `dispatch({id, type,
 * data})` per complete event. `id` is the last `id:` seen (it carries over
 * to later events, as the standard says).
 */
export function parser(dispatch) {
  let buf = '';
  let data = [];
  let type = '';
  let lastId = null;
  let first = true;
  const line = (l) => {
    if (l === '') {
      if (data.length) dispatch({ id: lastId, type: type || 'message', data: data.join('\n') });
      data = [];
      type = '';
      return;
    }
    if (l.startsWith(':')) return;
    const c = l.indexOf(':');
    const field = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  };
  return {
    push(chunk) {
      buf += chunk;
      if (first && buf.length) {
        if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
        first = false;
      }
      for (;;) {
        const i = buf.search(/[\r\n]/);
        if (i < 0) return;
        // A CR at the end may be the first half of a CRLF still to come.
        if (buf[i] === '\r' && i === buf.length - 1) return;
        const eol = buf[i] === '\r' && buf[i + 1] === '\n' ? 2 : 1;
        const l = buf.slice(0, i);
        buf = buf.slice(i + eol);
        line(l);
      }
    },
    get lastId() { return lastId; },
  };
}

/**
 * Follows the stream at `path` until `signal` aborts: `onEvent({id, type,
 * data})` per event, `onState('live' | 'reconnecting' | 'closed', error?)`
 * as the connection comes and goes. After a drop it waits (0.5 s, doubling
 * to 10 s) and reconnects with `Last-Event-ID` set to the last id received;
 * `lastId` resumes an earlier stream. `headers()` gives the request headers
 * (the key). A 401 or 403 stops it (`onState('closed', error)`).
 */
export async function follow(path, { signal, headers, onEvent, onState = () => {}, lastId = null }) {
  let wait = 500;
  while (!signal.aborted) {
    try {
      const h = { ...headers(), Accept: 'text/event-stream' };
      if (lastId !== null) h['Last-Event-ID'] = lastId;
      const r = await fetch(path, { headers: h, signal, cache: 'no-store' });
      if (r.status === 401 || r.status === 403 || r.status === 404) {
        onState('closed', new Error(`${path}: ${r.status}`));
        return;
      }
      if (!r.ok || !r.body) throw new Error(`${path}: ${r.status}`);
      onState('live');
      wait = 500;
      const p = parser((ev) => {
        if (ev.id !== null) lastId = ev.id;
        onEvent(ev);
      });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        p.push(value);
      }
      // An `id:` with no data still moves the place to resume from.
      if (p.lastId !== null) lastId = p.lastId;
      if (signal.aborted) return;
      onState('reconnecting');
    } catch (e) {
      if (signal.aborted) return;
      onState('reconnecting', e);
    }
    await sleep(wait, signal);
    wait = Math.min(wait * 2, 10000);
  }
}
