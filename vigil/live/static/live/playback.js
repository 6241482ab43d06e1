// Playback of recorded footage: up to four cameras on one clock, a timeline with spans,
// gaps and marks, speeds 1-8x, frame steps, snapshots.
//
// Times are seconds from the playback's start (``origin``). Each segment is appended at
// its offset (SourceBuffer.timestampOffset), so a video's currentTime is that same clock
// for every camera and a gap is a real hole in the buffer.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const cfgEl = document.getElementById("playback-config");
  if (!cfgEl || !window.Vigil) return;
  const V = window.Vigil;
  const M = V.messages();
  const cfg = JSON.parse(cfgEl.textContent);
  const grid = document.getElementById("pb-grid");
  const bar = document.getElementById("pb-bar");
  const messageEl = document.getElementById("pb-message");
  const canvas = document.getElementById("pb-timeline");
  const hoverEl = document.getElementById("pb-hover");
  const clockEl = bar.querySelector(".pb-clock");
  const template = document.getElementById("pb-video-template");
  const timeFmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: cfg.timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });

  function say(text) {
    messageEl.textContent = text || "";
  }

  if (!cfg.cameras.length) return;
  let opened;
  try {
    const body = cfg.start && cfg.end
      ? { cameras: cfg.cameras, start: cfg.start, end: cfg.end }
      : { cameras: cfg.cameras, day: cfg.day };
    opened = await V.api("playback", body);
  } catch (e) {
    say(e.message);
    return;
  }
  const origin = Date.parse(opened.start);
  const span = (Date.parse(opened.end) - origin) / 1000;
  const localSeconds = (ms) => {
    const parts = timeFmt.formatToParts(new Date(ms));
    const get = (t) => Number((parts.find((p) => p.type === t) || { value: 0 }).value) % 24;
    return get("hour") * 3600 + Number(parts.find((p) => p.type === "minute").value) * 60 +
      Number(parts.find((p) => p.type === "second").value);
  };
  const originLocal = localSeconds(origin);
  const label = (t) => timeFmt.format(new Date(origin + t * 1000));

  // ------------------------------------------------------------------ one camera
  class Player {
    constructor(cam) {
      this.code = cam.code;
      this.name = cam.name || cam.code;
      this.token = cam.token;
      this.allowed = cam.allowed;
      this.box = template.content.firstElementChild.cloneNode(true);
      this.box.dataset.camera = cam.code;
      this.video = this.box.querySelector("video");
      this.stateEl = this.box.querySelector(".pb-state");
      this.noticeEl = this.box.querySelector(".pb-notice");
      this.box.querySelector(".pb-name").textContent = this.name;
      this.box.querySelector(".pb-code").textContent = cam.code;
      grid.appendChild(this.box);
      this.segments = [];
      this.known = new Set();
      this.indexed = []; // [from, to] windows fetched
      this.timeline = { spans: [], gaps: [], marks: [] };
      this.loading = null;
      this.loadedIds = new Set();
      this.failures = 0;
      if (!cam.allowed) {
        this.show(cam.reason || M.not_allowed);
        this.box.querySelector("[data-action=snapshot]").hidden = true;
        return;
      }
      this.mse = new V.MsePlayer(this.video, (why) => this.show(M[why] || why));
      this.box.querySelector("[data-action=snapshot]").addEventListener("click", () =>
        V.snapshot(this.video, this.token, new Date(origin + this.video.currentTime * 1000),
          this.code, this.box),
      );
      this.refresher = setInterval(() => this.refresh(), (cfg.tokenSeconds * 1000) / 2);
    }

    get base() {
      return "/live/media/" + this.token + "/";
    }

    show(text) {
      this.stateEl.textContent = text || "";
      this.stateEl.hidden = !text;
    }

    async refresh() {
      try {
        const r = await V.api("tokens/refresh", { token: this.token });
        this.token = r.token;
        return true;
      } catch (e) {
        if (e.status === 403) {
          this.allowed = false;
          this.show(M.denied);
        }
        return false;
      }
    }

    async loadTimeline() {
      const q = "timeline?camera=" + encodeURIComponent(this.code) + "&start=" +
        encodeURIComponent(opened.start) + "&end=" + encodeURIComponent(opened.end);
      try {
        this.timeline = await V.api(q);
      } catch (e) {
        this.timeline = { spans: [], gaps: [], marks: [] };
      }
    }

    async fetchIndex(t) {
      const from = Math.max(0, t - 900);
      const to = Math.min(span, t + 2700);
      if (this.indexed.some(([a, b]) => a <= Math.max(0, t - 60) && b >= Math.min(span, t + 600))) return;
      this.indexed.push([from, to]);
      const resp = await fetch(this.base + "index?from=" + from + "&to=" + to, {
        credentials: "same-origin",
        cache: "no-store",
      });
      if (resp.status === 403 && (await this.refresh())) return this.fetchIndex(t);
      if (!resp.ok) return;
      const data = await resp.json();
      for (const s of data.segments) {
        if (!this.known.has(s.id)) {
          this.known.add(s.id);
          this.segments.push(s);
        }
      }
      this.segments.sort((a, b) => a.t0 - b.t0);
    }

    segmentAt(t) {
      return this.segments.find((s) => s.t0 <= t + 1e-3 && t < s.t1 - 1e-3) || null;
    }

    nextSegment(t) {
      return this.segments.find((s) => s.t0 > t + 1e-3) || null;
    }

    covers(t) {
      return !!this.segmentAt(t);
    }

    buffered(t) {
      const b = this.video.buffered;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.05 && t < b.end(i) - 0.05) return true;
      return false;
    }

    bufferedEnd(t) {
      const b = this.video.buffered;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.05 && t < b.end(i)) return b.end(i);
      return t;
    }

    // Fetch a segment from the keyframe at or before ``t`` and append it at its offset.
    load(seg, t) {
      if (this.loading) return this.loading;
      const within = Math.max(0, t - seg.t0);
      this.loading = (async () => {
        try {
          for (let attempt = 0; attempt < 20; attempt++) {
            const resp = await fetch(this.base + "seg/" + seg.id + "?t=" + within.toFixed(3), {
              credentials: "same-origin",
              cache: "no-store",
            });
            if (resp.status === 503) {
              this.noticeEl.textContent = M.transcode_busy;
              await V.sleep(1000 * Number(resp.headers.get("Retry-After") || 2));
              continue;
            }
            if (resp.status === 403) {
              if (await this.refresh()) continue;
              return;
            }
            if (!resp.ok) {
              this.failures++;
              return;
            }
            const codec = resp.headers.get("X-Vigil-Codec");
            const offset = Number(resp.headers.get("X-Vigil-Offset"));
            this.noticeEl.textContent = resp.headers.get("X-Vigil-Transcoded") === "1" ? M.transcoded : "";
            const bytes = new Uint8Array(await resp.arrayBuffer());
            if (!(await this.mse.setCodec(codec))) return;
            this.mse.removeOutside(t - 30, t + 90);
            await this.mse.idle();
            await this.mse.appendAt(bytes, offset);
            this.loadedIds.add(seg.id);
            this.failures = 0;
            return;
          }
        } catch (e) {
          this.failures++;
        } finally {
          this.loading = null;
        }
      })();
      return this.loading;
    }

    // Follow the group clock: load what is needed, seek when far off, play or pause.
    sync(t, playing, speed) {
      if (!this.allowed || !this.mse) return;
      this.fetchIndex(t).catch(() => {});
      const seg = this.segmentAt(t);
      const v = this.video;
      if (!seg) {
        this.show(this.segments.length || this.indexed.length ? M.no_recording : M.loading);
        if (!v.paused) v.pause();
        const next = this.nextSegment(t);
        if (next && next.t0 - t < 3 * speed && !this.loadedIds.has(next.id)) this.load(next, next.t0);
        return;
      }
      if (!this.buffered(t)) {
        this.show(M.loading);
        if (!this.loading && this.failures < 5) this.load(seg, t);
        return;
      }
      this.show("");
      const drift = v.currentTime - t;
      const limit = playing ? 0.3 * Math.max(1, speed / 2) : 0.02;
      if (Math.abs(drift) > limit) v.currentTime = t;
      else if (playing) v.playbackRate = speed * (drift > 0.08 ? 0.95 : drift < -0.08 ? 1.05 : 1);
      else v.playbackRate = speed;
      if (playing && v.paused) v.play().catch(() => {});
      if (!playing && !v.paused) v.pause();
      // Prefetch the next segment when the buffer ahead runs short.
      const end = this.bufferedEnd(t);
      if (!this.loading && end - t < 4 + 3 * speed) {
        const next = this.nextSegment(end - 0.2);
        if (next && !this.loadedIds.has(next.id) && next.t0 - end < 1) this.load(next, next.t0);
      }
    }

    fps(t) {
      const seg = this.segmentAt(t);
      return (seg && seg.fps) || 10;
    }
  }

  // ------------------------------------------------------------------ the group
  class Group {
    constructor(players) {
      this.players = players;
      this.clock = 0;
      this.playing = false;
      this.speed = 1;
      this.last = performance.now();
      this.seeking = false;
    }

    active() {
      return this.players.filter((p) => p.allowed && p.mse);
    }

    firstRecorded() {
      let best = null;
      for (const p of this.active()) {
        for (const [a] of p.timeline.spans) if (best === null || a < best) best = a;
      }
      return best === null ? 0 : best;
    }

    tick() {
      const now = performance.now();
      this.last = now;
      const active = this.active();
      if (this.playing && !this.seeking) {
        const lead = active.find(
          (p) => p.covers(this.clock) && p.buffered(this.clock) && !p.video.paused &&
            p.video.readyState >= 3 && !p.video.seeking,
        );
        if (lead) {
          this.clock = Math.max(this.clock, lead.video.currentTime);
        } else if (active.every((p) => !p.covers(this.clock))) {
          const nexts = active.map((p) => p.nextSegment(this.clock)).filter(Boolean);
          if (nexts.length) this.clock = Math.min(...nexts.map((s) => s.t0));
          else if (active.some((p) => p.segments.length)) this.pause();
        }
        if (this.clock >= span) this.pause();
      }
      for (const p of active) p.sync(this.clock, this.playing, this.speed);
      clockEl.textContent = label(this.clock);
      clockEl.dataset.t = this.clock.toFixed(3);
      draw();
    }

    seek(t) {
      this.clock = Math.min(Math.max(0, t), span);
      for (const p of this.active()) {
        if (!p.buffered(this.clock) && p.segmentAt(this.clock)) p.video.pause();
      }
      this.tick();
    }

    play() {
      this.playing = true;
      playBtn.textContent = M.pause;
      this.tick();
    }

    pause() {
      this.playing = false;
      playBtn.textContent = M.play;
      for (const p of this.active()) p.video.pause();
    }

    step(direction) {
      this.pause();
      const lead = this.active().find((p) => p.covers(this.clock)) || this.active()[0];
      const frame = 1 / (lead ? lead.fps(this.clock) : 10);
      this.seek(this.clock + direction * frame);
    }

    setSpeed(s) {
      this.speed = s;
      bar.querySelectorAll("[data-speed]").forEach((b) =>
        b.classList.toggle("active", Number(b.dataset.speed) === s),
      );
      this.tick();
    }
  }

  const players = opened.cameras.map((cam) => new Player(cam));
  grid.classList.add("n" + Math.max(1, players.length));
  const group = new Group(players);
  const playBtn = bar.querySelector("[data-action=play]");
  const denied = players.filter((p) => !p.allowed);
  if (denied.length === players.length) say(opened.cameras.map((c) => c.reason).join(" "));

  // ------------------------------------------------------------------ timeline
  let view = [0, span];
  let zoom = 0;
  const ROW = 18;
  const AXIS = 22;

  function setZoom(seconds) {
    zoom = seconds;
    if (!seconds || seconds >= span) view = [0, span];
    else {
      let a = group.clock - seconds / 2;
      a = Math.max(0, Math.min(span - seconds, a));
      view = [a, a + seconds];
    }
    bar.querySelectorAll("[data-zoom]").forEach((b) =>
      b.classList.toggle("active", Number(b.dataset.zoom) === seconds),
    );
    draw();
  }

  function xOf(t, width) {
    return ((t - view[0]) / (view[1] - view[0])) * width;
  }

  function tOf(x, width) {
    return view[0] + (x / width) * (view[1] - view[0]);
  }

  function draw() {
    const rows = Math.max(1, players.length);
    const cssWidth = canvas.clientWidth || 800;
    const height = AXIS + rows * ROW + 4;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(cssWidth * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(cssWidth * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.height = height + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, height);
    // keep the playhead in view when zoomed
    if (zoom && (group.clock < view[0] || group.clock > view[1])) setZoom(zoom);
    // axis
    ctx.fillStyle = "#5c6b7f";
    ctx.font = "11px sans-serif";
    const len = view[1] - view[0];
    const steps = [60, 300, 600, 1800, 3600, 7200, 10800];
    const step = steps.find((s) => len / s <= 12) || 21600;
    const firstTick = Math.ceil((view[0] + originLocal) / step) * step - originLocal;
    for (let t = firstTick; t <= view[1]; t += step) {
      const x = xOf(t, cssWidth);
      ctx.fillRect(x, AXIS - 6, 1, 6);
      ctx.fillText(label(t).slice(0, step < 3600 ? 5 : 5), x + 2, 11);
    }
    players.forEach((p, i) => {
      const y = AXIS + i * ROW;
      ctx.fillStyle = "#e3e8ef";
      ctx.fillRect(0, y, cssWidth, ROW - 4);
      ctx.fillStyle = "#d9534f";
      for (const g of p.timeline.gaps) {
        const x0 = xOf(g.start, cssWidth);
        ctx.fillRect(x0, y, Math.max(1, xOf(g.end, cssWidth) - x0), ROW - 4);
      }
      ctx.fillStyle = "#2e9d5b";
      for (const [a, b] of p.timeline.spans) {
        const x0 = xOf(a, cssWidth);
        ctx.fillRect(x0, y, Math.max(1, xOf(b, cssWidth) - x0), ROW - 4);
      }
      for (const m of p.timeline.marks) {
        ctx.fillStyle = m.kind === "tamper" ? "#e0218a" : "#f0ad4e";
        const x0 = xOf(m.start, cssWidth);
        const x1 = m.end === null ? x0 + 2 : xOf(m.end, cssWidth);
        ctx.fillRect(x0, y + ROW - 9, Math.max(2, x1 - x0), 5);
      }
    });
    const x = xOf(group.clock, cssWidth);
    ctx.fillStyle = "#12395f";
    ctx.fillRect(x - 1, 0, 2, height);
  }

  function pointerTime(ev) {
    const rect = canvas.getBoundingClientRect();
    return tOf(Math.min(Math.max(0, ev.clientX - rect.left), rect.width), rect.width);
  }

  let dragging = false;
  canvas.addEventListener("pointerdown", (ev) => {
    dragging = true;
    canvas.setPointerCapture(ev.pointerId);
    group.seeking = true;
    group.clock = pointerTime(ev);
    draw();
  });
  canvas.addEventListener("pointermove", (ev) => {
    const t = pointerTime(ev);
    hoverEl.textContent = label(t);
    if (dragging) {
      group.clock = t;
      draw();
    }
  });
  canvas.addEventListener("pointerup", (ev) => {
    if (!dragging) return;
    dragging = false;
    group.seeking = false;
    group.seek(pointerTime(ev));
  });

  // ------------------------------------------------------------------ controls
  playBtn.addEventListener("click", () => (group.playing ? group.pause() : group.play()));
  bar.querySelector("[data-action=step]").addEventListener("click", () => group.step(1));
  bar.querySelector("[data-action=back]").addEventListener("click", () => group.step(-1));
  bar.querySelectorAll("[data-speed]").forEach((b) =>
    b.addEventListener("click", () => group.setSpeed(Number(b.dataset.speed))),
  );
  bar.querySelectorAll("[data-zoom]").forEach((b) =>
    b.addEventListener("click", () => setZoom(Number(b.dataset.zoom))),
  );
  bar.querySelector("[data-action=goto]").addEventListener("click", () => {
    const value = bar.querySelector("input[name=goto]").value;
    if (!value) return;
    const [h, m, s] = value.split(":").map(Number);
    let t = h * 3600 + m * 60 + (s || 0) - originLocal;
    if (t < 0) t += 86400;
    group.seek(t);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, select, textarea")) return;
    if (ev.key === " ") {
      ev.preventDefault();
      group.playing ? group.pause() : group.play();
    } else if (ev.key === "ArrowRight") group.step(1);
    else if (ev.key === "ArrowLeft") group.step(-1);
  });
  window.addEventListener("resize", draw);

  await Promise.all(players.filter((p) => p.allowed).map((p) => p.loadTimeline()));
  const start = group.firstRecorded();
  window.vigilPlayback = {
    group,
    players,
    origin,
    span,
    label,
    seek: (t) => group.seek(t),
    view: () => view.slice(),
  };
  group.seek(start);
  setInterval(() => group.tick(), 100);
  group.play();
});
