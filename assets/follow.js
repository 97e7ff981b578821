() => {
  // A follower's page (?follow=CODE): the presenter's view, pushed by the server as it changes, in the page's
  // own elements; the controls are hidden, and "Explore on my own" starts a session from the presenter's text.
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

  const draw = (id, json) => {
    const chart = document.querySelector(`#${id} .live-plot`);
    if (!chart || !window.Plotly) return false;
    chart.classList.toggle("no-figure", !json);
    if (!json) { window.Plotly.purge(chart); return true; }
    const figure = JSON.parse(json);
    const narrow = chart.clientWidth < 520;  // a phone: the title smaller, from the left, so that it fits
    const title = narrow ? {...figure.layout.title, x: 0, xanchor: "left", font: {size: 14}} : figure.layout.title;
    window.Plotly.react(chart, figure.data, {...figure.layout, title}, {displaylogo: false});
    return true;
  };
  const show = (view) => {
    const box = document.querySelector("#prompt textarea");
    if (box) { box.value = view.prompt; box.readOnly = true; }
    const output = document.querySelector("#output .prose") ?? document.querySelector("#output .html-container");
    if ("output" in view && output) output.innerHTML = view.output;
    for (const option of document.querySelectorAll("#lang input[type=radio]")) option.checked = option.value === view.lang;
    const drawn = ("chart" in view ? draw("candidates-plot", view.chart) : true)
      && ("timeline" in view ? draw("timeline-plot", view.timeline) : true)
      && ("compare" in view ? draw("compare-plot", view.compare) : true);
    const summary = document.querySelector("#compare-summary .prose") ?? document.querySelector("#compare-summary");
    if ("compare_summary" in view && summary) summary.textContent = view.compare_summary.replaceAll("**", "");
    document.body.classList.toggle("comparing", Boolean(view.compare));
    say(`Following the presenter live · ${view.lang_name} id`);
    return drawn;
  };
  // Until Gradio has drawn the page (the elements and Plotly), the latest view waits; later ones replace it.
  let pending = null;
  const apply = () => {
    if (pending && show(pending)) pending = null;
    else if (pending) setTimeout(apply, 100);
  };
  const source = new EventSource(`room/${encodeURIComponent(code)}/events`);
  source.onmessage = (event) => {
    latest = JSON.parse(event.data);
    if (!latest.prompt && latest.prompt !== "") return;  // the room has shown nothing yet
    const waiting = pending !== null;
    pending = latest;
    if (!waiting) apply();
  };
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
