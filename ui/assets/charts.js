// A small line chart on a canvas: a few series over time, no dependencies.

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// series: [{ points: [[t_ms, value|null], …], color: "--c1" }], options: { max, format, span_ms }
export function lineChart(canvas, series, { max, format = (v) => String(v), span_ms = 300_000 } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);

  const now = Date.now();
  const left = 44, right = 6, top = 6, bottom = 16;
  const w = width - left - right, h = height - top - bottom;
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v != null));
  const top_value = max ?? Math.max(1, ...values) * 1.1;
  const x = (t) => left + w * (1 - (now - t) / span_ms);
  const y = (v) => top + h * (1 - v / top_value);

  g.font = "11px system-ui, sans-serif";
  g.fillStyle = cssVar("--muted");
  g.strokeStyle = cssVar("--line");
  g.lineWidth = 1;
  for (const fraction of [0, 0.5, 1]) {
    const value = top_value * fraction;
    g.beginPath();
    g.moveTo(left, y(value) + 0.5);
    g.lineTo(left + w, y(value) + 0.5);
    g.stroke();
    g.fillText(format(value), 2, y(value) + 4);
  }
  g.fillText(`-${Math.round(span_ms / 60000)} min`, left, height - 3);
  g.fillText("now", left + w - 20, height - 3);

  for (const s of series) {
    g.strokeStyle = cssVar(s.color);
    g.lineWidth = 1.5;
    g.beginPath();
    let drawing = false;
    for (const [t, v] of s.points) {
      if (v == null || now - t > span_ms) { drawing = false; continue; }
      if (drawing) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
      drawing = true;
    }
    g.stroke();
  }
}
