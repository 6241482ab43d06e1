// The security desk's live wall: one multiplexed live session for the page's tiles
// (sub-streams), a full view on the main stream, status and tamper badges.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const wall = document.getElementById("wall");
  if (!wall || !window.Vigil) return;
  const V = window.Vigil;
  const M = V.messages();
  const tiles = Array.from(wall.querySelectorAll(".tile"));
  if (!tiles.length) return;

  function showState(box, state, meta) {
    const el = box.querySelector(".tile-status");
    if (!el || !state) return;
    el.dataset.state = state;
    el.textContent = state === "not_allowed" ? (meta && meta.reason) || M.not_allowed : M[state] || state;
    box.dataset.state = state;
  }

  function showNotice(box, meta) {
    const el = box.querySelector(".tile-notice");
    if (!el) return;
    const text = meta.notice ? V.format(M[meta.notice] || meta.notice, meta) : "";
    el.textContent = text;
    el.hidden = !text;
    if (meta.notice) box.dataset.notice = meta.notice;
  }

  // A set of <video> elements fed by one live session.
  class Feed {
    constructor(boxes, cameras, stream) {
      this.boxes = boxes;
      this.players = new Map();
      this.session = new V.LiveSession({
        cameras,
        stream,
        onConnect: () => this.reset(),
        onMeta: (ch, meta) => this.meta(ch, meta),
        onMedia: (ch, bytes) => {
          const p = this.players.get(ch);
          if (p) p.append(bytes);
        },
        onEnd: (why) => this.boxes.forEach((b) => showState(b, why)),
      });
      this.timer = setInterval(() => this.players.forEach((p) => p.chase()), 250);
    }

    start() {
      this.session.start();
      return this;
    }

    reset() {
      this.players.forEach((p) => p.destroy());
      this.players.clear();
      this.boxes.forEach((box, ch) => {
        const video = box.querySelector("video");
        const player = new V.MsePlayer(video, (why) => {
          showState(box, "unavailable");
          showNotice(box, { notice: why === "unsupported" ? "unsupported" : "" });
        });
        this.players.set(ch, player);
      });
    }

    meta(ch, meta) {
      const targets = ch === -1 ? this.boxes : [this.boxes[ch]];
      for (const box of targets) {
        if (!box) continue;
        if (meta.state) showState(box, meta.state, meta);
        if ("notice" in meta) showNotice(box, meta);
        if (meta.mode) box.dataset.mode = meta.mode;
      }
      if (meta.codec && ch >= 0) {
        const p = this.players.get(ch);
        if (p) p.setCodec(meta.codec);
      }
    }

    stop() {
      clearInterval(this.timer);
      this.session.stop();
      this.players.forEach((p) => p.destroy());
      this.players.clear();
    }
  }

  const feed = new Feed(tiles, tiles.map((t) => t.dataset.camera), "sub").start();
  window.vigilWall = { feed, tiles };

  // Status from the server: the recorder's view when a camera is not relayed, and
  // tamper alerts.
  async function poll() {
    const codes = tiles.map((t) => t.dataset.camera);
    const full = fullview.hidden ? null : fullview.dataset.camera;
    if (full && !codes.includes(full)) codes.push(full);
    try {
      const states = await V.api("wall/status?cameras=" + encodeURIComponent(codes.join(",")));
      for (const box of [...tiles, fullview]) {
        const s = states[box.dataset.camera];
        if (!s) continue;
        const tamper = box.querySelector(".tile-tamper");
        if (tamper) tamper.hidden = !s.tamper;
        box.classList.toggle("tampered", !!s.tamper);
        const current = box.dataset.state;
        if (s.status === "offline" && current !== "live") showState(box, "offline");
      }
    } catch (e) {
      /* the next poll will tell */
    }
  }

  // Full view on the main stream.
  const fullview = document.getElementById("fullview");
  let full = null;

  function openFull(tile) {
    closeFull();
    fullview.dataset.camera = tile.dataset.camera;
    fullview.querySelector(".fv-title").textContent =
      tile.dataset.name + " · " + tile.dataset.camera;
    showState(fullview, "connecting");
    showNotice(fullview, { notice: "" });
    fullview.hidden = false;
    full = new Feed([fullview], [tile.dataset.camera], "main").start();
    window.vigilWall.full = full;
    poll();
  }

  function closeFull() {
    if (full) full.stop();
    full = null;
    if (window.vigilWall) window.vigilWall.full = null;
    fullview.hidden = true;
  }

  tiles.forEach((tile) => {
    tile.addEventListener("click", () => openFull(tile));
    tile.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        openFull(tile);
      }
    });
  });
  fullview.querySelector("[data-action=close]").addEventListener("click", closeFull);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !fullview.hidden) closeFull();
  });
  fullview.querySelector("[data-action=snapshot]").addEventListener("click", async () => {
    if (!full || !full.session.token) return;
    const video = fullview.querySelector("video");
    await V.snapshot(video, full.session.token, null, fullview.dataset.camera, fullview);
  });

  poll();
  setInterval(poll, 5000);
  window.addEventListener("pagehide", () => {
    feed.stop();
    closeFull();
  });
});
