// Vigil live and playback players: Media Source Extensions fed with fragmented MP4.
// Shared by the wall (wall.js) and playback (playback.js). No inline script, no eval
// (the site's Content-Security-Policy forbids both).
"use strict";

(function () {
  const MSG_MEDIA = 1;
  const MSG_META = 2;

  function csrfToken() {
    const el = document.querySelector("[data-csrf]");
    return el ? el.dataset.csrf : "";
  }

  async function api(path, body) {
    const opts = { credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers = { "Content-Type": "application/json", "X-CSRFToken": csrfToken() };
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch("/api/live/" + path, opts);
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const err = new Error((data && data.detail) || resp.statusText);
      err.status = resp.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function messages() {
    const el = document.getElementById("live-messages");
    return el ? JSON.parse(el.textContent) : {};
  }

  function format(text, values) {
    return String(text || "").replace(/%\((\w+)\)s/g, (m, k) =>
      values && k in values ? String(values[k]) : m,
    );
  }

  function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  function concat(parts) {
    let size = 0;
    for (const p of parts) size += p.byteLength;
    const out = new Uint8Array(size);
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.byteLength;
    }
    return out;
  }

  // One <video> fed through one SourceBuffer. Appends are queued and joined while the
  // buffer is busy; the codec can change (changeType) between init segments.
  class MsePlayer {
    constructor(video, onError) {
      this.video = video;
      this.onError = onError || function () {};
      this.queue = [];
      this.sb = null;
      this.codec = "";
      this.bytes = 0;
      this.failed = false;
      this.ms = new MediaSource();
      this.url = URL.createObjectURL(this.ms);
      video.src = this.url;
      this.opened = new Promise((resolve) =>
        this.ms.addEventListener("sourceopen", resolve, { once: true }),
      );
    }

    async setCodec(codec) {
      await this.opened;
      if (this.failed) return false;
      const mime = 'video/mp4; codecs="' + codec + '"';
      if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
        this.failed = true;
        this.onError("unsupported");
        return false;
      }
      if (!this.sb) {
        this.sb = this.ms.addSourceBuffer(mime);
        this.sb.mode = "segments";
        this.sb.addEventListener("updateend", () => this.pump());
        this.sb.addEventListener("error", () => this.onError("append"));
      } else if (codec !== this.codec) {
        await this.idle();
        this.sb.changeType(mime);
      }
      this.codec = codec;
      this.pump();
      return true;
    }

    idle() {
      if (!this.sb || !this.sb.updating) return Promise.resolve();
      return new Promise((r) => this.sb.addEventListener("updateend", r, { once: true }));
    }

    // Playback: append one segment's bytes (init + fragments) at a timeline offset, after
    // everything queued, and resolve once the SourceBuffer has taken them.
    async appendAt(bytes, offset) {
      await this.opened;
      if (this.failed || !this.sb) return false;
      while (this.queue.length || this.sb.updating) await this.idle();
      this.sb.timestampOffset = offset;
      this.bytes += bytes.byteLength;
      try {
        this.sb.appendBuffer(bytes);
      } catch (e) {
        if (e.name !== "QuotaExceededError") throw e;
        this.removeOutside(this.video.currentTime - 5, this.video.currentTime + 60);
        await this.idle();
        this.sb.appendBuffer(bytes);
      }
      await this.idle();
      return true;
    }

    // Playback: drop what is buffered outside [from, to] (seconds).
    removeOutside(from, to) {
      const sb = this.sb;
      if (!sb || sb.updating) return;
      const b = sb.buffered;
      if (!b.length) return;
      if (b.start(0) < from - 1) sb.remove(0, from);
      else if (b.end(b.length - 1) > to + 1) sb.remove(to, Infinity);
    }

    async clear() {
      if (!this.sb) return;
      await this.idle();
      if (this.sb.buffered.length) {
        this.sb.remove(0, Infinity);
        await this.idle();
      }
    }

    append(bytes) {
      if (this.failed) return;
      this.queue.push(bytes);
      this.bytes += bytes.byteLength;
      this.pump();
    }

    pump() {
      const sb = this.sb;
      if (!sb || sb.updating || !this.queue.length || this.ms.readyState !== "open") return;
      const data = this.queue.length === 1 ? this.queue[0] : concat(this.queue);
      this.queue = [];
      try {
        sb.appendBuffer(data);
      } catch (e) {
        if (e.name === "QuotaExceededError") {
          this.queue.unshift(data);
          this.trim(2);
        } else {
          this.failed = true;
          this.onError("append");
        }
      }
    }

    trim(keep) {
      const sb = this.sb;
      const v = this.video;
      if (!sb || sb.updating || !v.buffered.length) return;
      const cut = v.currentTime - keep;
      if (v.buffered.start(0) < cut - 1) sb.remove(0, cut);
    }

    // Live: stay close to the newest frame (seek when far behind, play a little faster
    // when slightly behind).
    chase() {
      const v = this.video;
      const b = v.buffered;
      if (!b.length) return;
      const last = b.length - 1;
      const end = b.end(last);
      const lag = end - v.currentTime;
      if (v.currentTime < b.start(last) || lag > 1.2) {
        v.currentTime = Math.max(b.start(last), end - 0.25);
      } else {
        v.playbackRate = lag > 0.5 ? 1.15 : 1.0;
      }
      if (v.paused && v.readyState >= 2) v.play().catch(() => {});
      if (b.start(0) < v.currentTime - 30) this.trim(10);
    }

    destroy() {
      this.failed = true;
      this.queue = [];
      try {
        this.video.removeAttribute("src");
        this.video.load();
      } catch (e) {
        /* already gone */
      }
      URL.revokeObjectURL(this.url);
    }
  }

  // Splits the multiplexed live stream: u8 kind | u8 channel | u32 length | payload.
  class Demux {
    constructor(onMessage) {
      this.onMessage = onMessage;
      this.rest = null;
    }

    push(chunk) {
      let buf = chunk;
      if (this.rest) {
        buf = concat([this.rest, chunk]);
        this.rest = null;
      }
      let pos = 0;
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      while (pos + 6 <= buf.byteLength) {
        const len = view.getUint32(pos + 2);
        if (pos + 6 + len > buf.byteLength) break;
        this.onMessage(buf[pos], buf[pos + 1], buf.subarray(pos + 6, pos + 6 + len));
        pos += 6 + len;
      }
      if (pos < buf.byteLength) this.rest = buf.slice(pos);
    }
  }

  const decoder = new TextDecoder();

  // A live session over several cameras: opens it through the API (one audit entry per
  // camera), reads the multiplexed stream, refreshes the media token, reconnects.
  class LiveSession {
    constructor(opts) {
      this.cameras = opts.cameras;
      this.stream = opts.stream || "sub";
      this.onMeta = opts.onMeta;
      this.onMedia = opts.onMedia;
      this.onConnect = opts.onConnect || function () {};
      this.onEnd = opts.onEnd || function () {};
      this.stopped = false;
      this.token = null;
      this.bytes = 0;
    }

    async start() {
      let opened;
      try {
        opened = await api("sessions", { cameras: this.cameras, stream: this.stream });
      } catch (e) {
        this.onEnd("denied", e.message);
        return;
      }
      for (const cam of opened.cameras) {
        if (!cam.allowed) this.onMeta(cam.channel, { state: "not_allowed", reason: cam.reason });
      }
      if (!opened.token) {
        this.onEnd("denied");
        return;
      }
      this.token = opened.token;
      this.timer = setInterval(() => this.refresh().catch(() => {}), 45000);
      this.run();
    }

    get url() {
      return "/live/media/" + this.token + "/live";
    }

    async refresh() {
      const r = await api("tokens/refresh", { token: this.token });
      this.token = r.token;
      return r;
    }

    async run() {
      while (!this.stopped) {
        this.abort = new AbortController();
        let status = 0;
        try {
          const resp = await fetch(this.url, {
            credentials: "same-origin",
            cache: "no-store",
            signal: this.abort.signal,
          });
          status = resp.status;
          if (resp.ok) {
            this.onConnect();
            const demux = new Demux((kind, ch, payload) => {
              if (kind === MSG_MEDIA) this.onMedia(ch, payload);
              else if (kind === MSG_META) this.onMeta(ch, JSON.parse(decoder.decode(payload)));
            });
            const reader = resp.body.getReader();
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              this.bytes += value.byteLength;
              demux.push(value);
            }
          }
        } catch (e) {
          if (this.stopped) return;
        }
        if (this.stopped) return;
        this.onMeta(-1, { state: "reconnecting" });
        await sleep(status === 403 ? 200 : 1500);
        try {
          await this.refresh();
        } catch (e) {
          if (e.status === 403 || e.status === 401) {
            this.onMeta(-1, { state: "denied" });
            this.onEnd("denied");
            return;
          }
        }
      }
    }

    stop() {
      this.stopped = true;
      clearInterval(this.timer);
      if (this.abort) this.abort.abort();
    }
  }

  function stamp(date) {
    const d = date || new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return (
      d.getFullYear() + pad(d.getMonth() + 1) + pad(d.getDate()) + "-" +
      pad(d.getHours()) + pad(d.getMinutes()) + pad(d.getSeconds())
    );
  }

  function flash(box, text) {
    let el = box && box.querySelector(".flash");
    if (!el && box) {
      el = document.createElement("div");
      el.className = "flash";
      box.appendChild(el);
    }
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(() => (el.hidden = true), 4000);
  }

  // Snapshot to PNG: recorded in the audit log first (refused: no picture), then drawn
  // from the picture on screen.
  async function snapshot(video, token, at, code, box) {
    const M = messages();
    try {
      await api("snapshots", { token, at: at ? at.toISOString() : null });
    } catch (e) {
      flash(box, M.snapshot_denied);
      return null;
    }
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((r) => canvas.toBlob(r, "image/png"));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = code + "-" + stamp(at) + ".png";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    flash(box, M.snapshot_saved);
    return blob;
  }

  window.Vigil = Object.assign(window.Vigil || {}, {
    snapshot,
    flash,
    api,
    messages,
    format,
    sleep,
    concat,
    MsePlayer,
    Demux,
    LiveSession,
  });
})();
