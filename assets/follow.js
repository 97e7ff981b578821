() => {
  // A follower's page (?follow=CODE): the presenter's view records, pushed by the server as they change, drawn by
  // the page's own renderer (view.js); the controls are hidden, and "Explore on my own" starts a session from the
  // presenter's text.
  const code = new URLSearchParams(location.search).get("follow");
  if (!code) return;
  document.body.classList.add("follower");
  const banner = document.createElement("div");
  banner.id = "room-banner";
  banner.innerHTML = '<span id="room-state">Joining the room…</span>'
    + '<button id="leave-room" type="button">Explore on my own</button>';
  document.body.prepend(banner);
  const say = (text) => { document.getElementById("room-state").textContent = text; };
  let latest = null;
  document.getElementById("leave-room").addEventListener("click", () => {
    location.href = location.pathname + (latest ? latest.explore : "");
  });

  const compared = (view) => {
    const drawn = window.xlmCharts.draw(document.querySelector("#compare-plot .live-plot"), JSON.parse(view.compare));
    const summary = document.querySelector("#compare-summary .prose") ?? document.querySelector("#compare-summary");
    if (summary) summary.textContent = view.compare_summary.replaceAll("**", "");
    document.body.classList.add("comparing");
    return drawn;
  };
  const shown = (record) => {
    const box = document.querySelector("#prompt textarea");
    if (box) { box.value = record.prompt; box.readOnly = true; }
    if (!window.Plotly || !document.querySelector("#candidates-plot .live-plot")) return false;
    window.xlmView.show(record);
    say(`Following the presenter live · ${record.lang_name} id`);
    return true;
  };
  // Until Gradio has drawn the page (the elements and Plotly), what came waits, in order.
  const pending = [];
  const apply = () => {
    while (pending.length) {
      const [draw, data] = pending[0];
      if (!draw(data)) { setTimeout(apply, 100); return; }
      pending.shift();
    }
  };
  const queue = (draw) => (event) => {
    const data = JSON.parse(event.data);
    if (draw === shown) latest = data;
    pending.push([draw, data]);
    if (pending.length === 1) apply();
  };
  const source = new EventSource(`room/${encodeURIComponent(code)}/events`);
  source.addEventListener("view", queue(shown));
  source.addEventListener("compare", queue(compared));
  const ended = (text) => {
    source.close();
    document.body.classList.add("room-ended");
    say(text);
  };
  source.addEventListener("closed", () => ended("The presenter closed the room. The page stays as it was."));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) ended("No open room has this link: it was closed, or is wrong.");
    else say("Reconnecting to the room…");
  };
}
