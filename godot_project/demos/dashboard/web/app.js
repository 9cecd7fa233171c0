// The Dashboard demo's page: reads the game's snapshots from the WebSocket /live and shows them;
// the form POSTs /api/spawn, and the character appears in the next snapshot.
"use strict";

const $ = (id) => document.getElementById(id);
const chart = { values: [], max: 120 };

function connect() {
  const socket = new WebSocket(`ws://${location.host}/live`);
  socket.onopen = () => setStatus("live");
  socket.onmessage = (event) => show(JSON.parse(event.data));
  socket.onclose = () => {
    setStatus("closed");
    setTimeout(connect, 1000);
  };
}

function setStatus(text) {
  $("status").textContent = text;
  $("status").className = `pill ${text}`;
}

function show(snapshot) {
  $("tasks").textContent = snapshot.tasks;
  $("step-usec").textContent = snapshot.step_usec.toFixed(2);
  $("fps").textContent = snapshot.fps;
  $("frame").textContent = snapshot.frame;
  $("uptime").textContent = snapshot.uptime_sec.toFixed(1);
  $("browsers").textContent = snapshot.browsers;
  $("task-list").replaceChildren(...snapshot.task_list.map((t) => item(`${t.name} · ${t.owner} · ${t.age_sec} s`)));
  $("nodes").replaceChildren(...snapshot.nodes.map(nodeRow));
  $("characters").replaceChildren(...snapshot.characters.map((name) => item(name)));
  chart.values.push(snapshot.step_usec);
  chart.values.splice(0, chart.values.length - chart.max);
  drawChart();
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function nodeRow(node) {
  const row = document.createElement("tr");
  const state = document.createElement("span");
  state.className = `pill ${node.state ?? ""}`;
  state.textContent = node.state ?? "–";
  const stats = Object.entries(node.stats).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(2) : v}`);
  const cells = [node.path, node.class, state, stats.join(" · ")];
  cells.forEach((content, i) => {
    const cell = document.createElement("td");
    if (i === 3) cell.className = "stats";
    cell.append(content);
    row.append(cell);
  });
  return row;
}

function drawChart() {
  const canvas = $("step-chart");
  const g = canvas.getContext("2d");
  const top = Math.max(...chart.values, 1);
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = "#3dd6c6";
  g.lineWidth = 2;
  g.beginPath();
  chart.values.forEach((v, i) => {
    const x = (i / (chart.max - 1)) * canvas.width;
    const y = canvas.height - (v / top) * (canvas.height - 4) - 2;
    i === 0 ? g.moveTo(x, y) : g.lineTo(x, y);
  });
  g.stroke();
}

$("spawn-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("spawn-name").value;
  try {
    const response = await fetch("api/spawn", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name }),
    });
    const answer = await response.json();
    $("spawn-result").textContent = response.ok
      ? `the game spawned '${answer.spawned}' (${answer.characters} in all)`
      : `the game answered ${response.status}: ${answer.error}`;
  } catch (err) {
    $("spawn-result").textContent = `no answer: ${err}`;
  }
});

connect();
