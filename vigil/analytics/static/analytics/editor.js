// Masks and zones editor on a camera's page: polygons in normalised 0-1 coordinates,
// kept in the form's hidden "masks" and "zones" inputs. No inline script (strict CSP).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("analysis-settings");
  if (!form) return;
  const editor = form.querySelector(".editor");
  const canvas = editor.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const masksInput = form.querySelector("input[name=masks]");
  const zonesInput = form.querySelector("input[name=zones]");
  const kind = editor.querySelector("[data-act=kind]");
  const nameInput = editor.querySelector("[data-act=name]");
  let masks = JSON.parse(masksInput.value || "[]");
  let zones = JSON.parse(zonesInput.value || "{}");
  let current = [];
  let background = null;

  function save() {
    masksInput.value = JSON.stringify(masks);
    zonesInput.value = JSON.stringify(zones);
  }
  function poly(points, fill, stroke) {
    if (!points.length) return;
    ctx.beginPath();
    points.forEach(([x, y], i) => {
      const px = x * canvas.width, py = y * canvas.height;
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.strokeStyle = stroke;
    ctx.lineWidth = 2;
    ctx.fill();
    ctx.stroke();
  }
  function draw() {
    ctx.fillStyle = "#20242c";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (background) ctx.drawImage(background, 0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "rgba(255,255,255,.15)";
    for (let i = 1; i < 8; i++) {
      ctx.beginPath(); ctx.moveTo((i * canvas.width) / 8, 0); ctx.lineTo((i * canvas.width) / 8, canvas.height); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, (i * canvas.height) / 8); ctx.lineTo(canvas.width, (i * canvas.height) / 8); ctx.stroke();
    }
    masks.forEach((p) => poly(p, "rgba(0,0,0,.55)", "#888"));
    Object.entries(zones).forEach(([name, p]) => {
      poly(p, "rgba(240,173,78,.25)", "#f0ad4e");
      ctx.fillStyle = "#f0ad4e";
      ctx.font = "14px sans-serif";
      ctx.fillText(name, p[0][0] * canvas.width + 4, p[0][1] * canvas.height + 16);
    });
    if (current.length) {
      ctx.beginPath();
      current.forEach(([x, y], i) => {
        const px = x * canvas.width, py = y * canvas.height;
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.strokeStyle = "#4fc3f7";
      ctx.stroke();
      current.forEach(([x, y]) => ctx.fillRect(x * canvas.width - 2, y * canvas.height - 2, 4, 4));
    }
  }
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
    current.push([Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000]);
    draw();
  });
  editor.querySelector("[data-act=close]").addEventListener("click", () => {
    if (current.length < 3) return;
    if (kind.value === "zone") {
      const name = (nameInput.value || "").trim().replace(/,/g, " ") || "zone " + (Object.keys(zones).length + 1);
      zones[name] = current;
    } else {
      masks.push(current);
    }
    current = [];
    save();
    draw();
  });
  editor.querySelector("[data-act=undo]").addEventListener("click", () => { current.pop(); draw(); });
  editor.querySelector("[data-act=clear]").addEventListener("click", () => {
    masks = []; zones = {}; current = []; save(); draw();
  });
  const viewButton = editor.querySelector("[data-act=view]");
  if (viewButton && editor.dataset.viewUrl) {
    viewButton.addEventListener("click", () => {
      const img = new Image();
      img.onload = () => { background = img; draw(); };
      img.src = editor.dataset.viewUrl + "?t=" + Date.now();
    });
  }
  draw();
});
