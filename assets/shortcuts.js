() => {
  // Keys for talks: → step, 1-9 pick a candidate, L switch language, Backspace undo, C continue, S stop,
  // P presenter mode. A follower's page has no keys: it shows the presenter's.
  if (new URLSearchParams(location.search).get("follow")) return;
  const presenting = (on) => {
    document.body.classList.toggle("presenter", on);
    document.dispatchEvent(new Event("presenter"));  // the charts redraw at the presenter's size
  };
  const radios = (id) => [...document.querySelectorAll(`#${id} input[type=radio]`)];
  const press = (id) => document.getElementById(id)?.click();
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "arrowright") press("step");
    else if (key === "backspace") press("undo");
    else if (key === "c") press("continue");
    else if (key === "s") press("stop");
    else if (/^[1-9]$/.test(key)) radios("candidate-list")[Number(key) - 1]?.click();
    else if (key === "l") {
      const options = radios("lang");
      const checked = options.findIndex((option) => option.checked);
      options[(checked + 1) % options.length]?.click();
    } else if (key === "p") presenting(!document.body.classList.contains("presenter"));
    else return;
    event.preventDefault();
  });
  // A click on a bar of the next-token chart picks that candidate, like the list beside it.
  document.addEventListener("click", (event) => {
    const chart = event.target.closest("#candidates-plot")?.querySelector(".js-plotly-plot");
    const point = chart?._hoverdata?.[0];
    if (point && point.curveNumber === 0) radios("candidate-list")[point.pointIndex]?.click();
  });
  // A click on a row of the attention chart picks that layer and head.
  document.addEventListener("click", (event) => {
    const chart = event.target.closest("#attention-plot")?.querySelector(".js-plotly-plot");
    const point = chart?._hoverdata?.[0];
    const heads = radios("head").length;
    if (point === undefined || !heads) return;
    radios("layer")[Math.floor(point.y / heads)]?.click();
    radios("head")[point.y % heads]?.click();
  });
  if (new URLSearchParams(location.search).get("presenter") === "1") presenting(true);
}
