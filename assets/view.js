// The page's renderer: one view record (xlm_demo/page/next_token/record.py) drawn into the page's elements — the
// next-token chart, the coloured text, the candidates, the status line, the timeline and the tokens' table — on the
// presenter's page, a follower's, and the exported view alike. On the presenter's page it also sends the requests:
// typing, Step, pick, Undo, Reset, Continue and Stop go to the server's view route, one request in flight at most,
// the latest text always winning. Loaded in the page's head, before Gradio draws the page.
(() => {
  const look = window.xlmLook;  // the charts' shared look, from the server (look.py)
  const esc = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const percent = (p, digits = 1) => `${(p * 100).toFixed(digits)}%`;
  const counted = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;  // "1 position", "35 positions"

  // --- Charts ---------------------------------------------------------------------------------------------------
  // A percent axis from 0 to `top` (look.py's percent_axis): a tick every 1, 2 or 5 times a power of ten, at most
  // five steps, labelled with the decimals the step needs, so that no two ticks read the same at any width.
  const percentAxis = (top) => {
    const rough = top / look.percent_steps;
    let exponent = Math.floor(Math.log10(rough));
    let mantissa = [1, 2, 5, 10].find((m) => m * 10 ** exponent >= rough);
    if (mantissa === 10) [mantissa, exponent] = [1, exponent + 1];
    const tickformat = `.${Math.max(0, -exponent - 2)}~%`;
    return {range: [0, top], tickmode: "linear", tick0: 0, dtick: mantissa * 10 ** exponent, tickformat};
  };
  const labelMargin = (labels) => Math.min(240, Math.max(40, 16 + 10 * Math.max(0, ...labels.map((l) => l.length))));

  const candidatesFigure = (record) => {
    const candidates = record.candidates;
    const ranks = candidates.map((c) => c.rank);
    const tokens = candidates.map((c) => c.token);
    const bars = {
      type: "bar", x: candidates.map((c) => c.prob), y: ranks, orientation: "h", name: "model",
      marker: {color: record.colour}, text: candidates.map((c) => percent(c.prob)), textposition: "outside",
      cliponaxis: false, hoverinfo: "text", customdata: candidates.map((c) => c.id),
      hovertext: candidates.map((c) => `<b>${esc(c.token)}</b><br>id ${c.id} · piece ${esc(c.piece)}<br>`
        + `p = ${c.prob.toFixed(4)} · log p = ${c.logprob.toFixed(3)}<br>rank ${c.rank}<br>`
        + `when sampling: ${c.sampling_prob.toFixed(4)}`),
    };
    const sampled = {  // temperature, top-k or top-p reshaped it: what sampling draws from
      type: "bar", x: candidates.map((c) => c.sampling_prob), y: ranks, orientation: "h",
      name: "after sampling settings", marker: {color: "rgba(0,0,0,0)", line: {color: "#111827", width: 2}},
      hoverinfo: "skip",
    };
    const drawn = candidates.flatMap((c) => (record.reshaped ? [c.prob, c.sampling_prob] : [c.prob]));
    const longest = Math.max(0, ...drawn);
    return {
      data: record.reshaped ? [bars, sampled] : [bars],
      layout: {
        ...look.layout, height: 90 + 34 * candidates.length,
        margin: {...look.layout.margin, l: labelMargin(tokens), r: look.value_label_px},
        title: {text: `Next token · entropy ${record.entropy.toFixed(2)} nats`},
        barmode: "overlay", showlegend: record.reshaped, legend: {orientation: "h", y: -0.08},
        xaxis: {...percentAxis(Math.min(1, longest * 1.25 + 0.02)), fixedrange: true, ...look.free_labels},
        yaxis: {autorange: "reversed", tickvals: ranks, ticktext: tokens.map(esc), fixedrange: true,
          ...look.free_labels},
      },
    };
  };

  const timelineFigure = (steps) => {
    const index = steps.map((_, i) => i + 1);
    return {
      data: [
        {type: "bar", x: index, y: steps.map((s) => s.prob), name: "chosen token's probability",
          marker: {color: look.blue}, hoverinfo: "text",
          hovertext: steps.map((s) => `${esc(s.token)}: p = ${s.prob.toFixed(3)}, rank ${s.rank}`)},
        {type: "scatter", x: index, y: steps.map((s) => s.entropy), name: "entropy (nats)", yaxis: "y2",
          mode: "lines+markers", line: {color: look.orange, width: 3}},
      ],
      layout: {
        ...look.layout, height: 260, margin: {...look.layout.margin, l: 60, r: 50},
        title: {text: "Continuation so far"}, legend: {orientation: "h", y: -0.25},
        xaxis: {tickvals: index, ticktext: steps.map((s) => esc(s.token)), fixedrange: true, ...look.free_labels},
        yaxis: {...percentAxis(1), fixedrange: true, ...look.free_labels},
        yaxis2: {overlaying: "y", side: "right", rangemode: "tozero", fixedrange: true, ...look.free_labels},
      },
    };
  };

  // Plotly's own image export, for slides: the camera saves a PNG, the button beside it an SVG; no toolbar on a
  // phone's screen, where it would cover the title.
  const PHONE = 640;  // px of screen
  const config = (name) => ({
    displaylogo: false, displayModeBar: window.innerWidth >= PHONE ? "hover" : false,
    toImageButtonOptions: {format: "png", scale: 2, filename: `xlm-${name}`},
    modeBarButtonsToAdd: [{
      name: "Download plot as SVG", icon: window.Plotly.Icons.disk,
      click: (div) => window.Plotly.downloadImage(div, {format: "svg", filename: `xlm-${name}`}),
    }],
  });
  // A chart as narrow as a phone: its title smaller, from the left and wrapped; its x labels thinned until they
  // fit side by side; a mirrored axis (Compare) wide enough that the value labels beside its bars stay inside, its
  // tick labels left to those.
  const NARROW = 520;  // px
  const isNarrow = (chart) => chart.clientWidth > 0 && chart.clientWidth < NARROW;
  const wrapped = (text, chars) => String(text).split(" ").reduce((lines, word) => {
    const last = lines.at(-1);
    if (last && (last + " " + word).length <= chars) lines[lines.length - 1] = last + " " + word;
    else lines.push(word);
    return lines;
  }, []);
  const thinned = (axis, width) => {
    if (!(width > 0)) return axis;  // a chart not laid out yet: nothing to thin by
    if (axis.tickmode === "linear" && axis.range && axis.dtick > 0 && window.innerWidth < PHONE) {  // a percent axis on a phone:
      const steps = Math.round((axis.range[1] - axis.range[0]) / axis.dtick);  // fewer, wider steps, written alike
      const every = Math.ceil((steps + 1) / Math.max(2, Math.floor(width / 52)));  // about 52 px a label ("100%")
      return every <= 1 ? {...axis, tickangle: 0} : {...axis, dtick: axis.dtick * every, tickangle: 0};
    }
    if (!Array.isArray(axis.ticktext)) return axis;
    const label = 16 + 10 * Math.max(...axis.ticktext.map((text) => String(text).length));  // px, at 16 px type
    const every = Math.ceil(axis.ticktext.length / Math.max(2, Math.floor(width / label)));
    if (every <= 1) return axis;
    return {...axis, tickangle: 0, ticktext: axis.ticktext.map((text, i) => (i % every ? "" : text))};
  };
  const roomier = (axis, half) => {
    if (!Array.isArray(axis.range) || axis.range[0] !== -axis.range[1] || !(half > 0)) return axis;  // no NaN range
    const scale = half / Math.max(half - look.value_label_px, half / 2);  // the bars' own labels tell the values:
    return {...axis, range: [axis.range[0] * scale, axis.range[1] * scale], showticklabels: false};  // no ticks
  };
  const narrowed = (chart, layout) => {
    const width = chart.clientWidth;
    const lines = wrapped(layout.title?.text ?? "", Math.max(16, Math.floor((width - 24) / 8)));
    const legendRows = layout.showlegend !== false && layout.legend?.orientation === "h" ? 1 : 0;  // it wraps
    const margin = {...layout.margin, t: (layout.margin?.t ?? 40) + 18 * (lines.length - 1),
      b: (layout.margin?.b ?? 40) + 28 * legendRows};
    const plot = width - Math.max(60, margin.l ?? 80) - (margin.r ?? 20);  // px between the margins
    const axes = Object.fromEntries(Object.keys(layout).filter((key) => /^xaxis\d*$/.test(key))
      .map((key) => [key, roomier(thinned(layout[key], plot), plot / 2)]));
    const title = {...layout.title, text: lines.join("<br>"), x: 0, xanchor: "left", font: {size: 14}};
    return {...layout, ...axes, margin, title};
  };
  // Presenter mode: the candidates' type 1.75 times as large (labels of 28 px) and as high as the screen allows;
  // the other charts' 1.3 times.
  const fitted = (chart, name, layout) => {
    if (!document.body.classList.contains("presenter")) return isNarrow(chart) ? narrowed(chart, layout) : layout;
    const scale = name === "candidates-plot" ? 1.75 : 1.3;
    const size = (font) => ({...font, size: Math.round((font?.size ?? 16) * scale)});
    const widened = (side) => Math.round((layout.margin?.[side] ?? 80) * scale);
    const margin = {...layout.margin, l: widened("l"), r: widened("r")};
    const large = {...layout, font: size(layout.font), title: {...layout.title, font: size(layout.font)}, margin};
    if (name !== "candidates-plot") return large;
    const top = chart.getBoundingClientRect().top + window.scrollY;
    return {...large, height: Math.max(360, window.innerHeight - top - 24)};
  };
  // Drawn to the width it has: when the page settles, the window changes or a plot is shown again.
  const resized = new ResizeObserver((entries) => entries.forEach(({target, contentRect}) => {
    const width = Math.round(contentRect.width);
    if (width === 0 || width === target.xlmWidth || target.classList.contains("no-figure")) return;
    target.xlmWidth = width;
    if (!window.Plotly || !target.xlmFigure) return;
    // A chart drawn before it had a width is fitted to the width it got, once; later changes resize it in place.
    if (target.xlmFitWidth === 0) draw(target, target.xlmFigure);
    else window.Plotly.Plots.resize(target);
  }));
  // Every chart of the page is drawn here: Plotly.react on a div that stays, so Plotly draws only what changed.
  // Until Plotly has loaded (the charts' components load it), the latest figure waits for it.
  const draw = (chart, figure) => {
    if (!chart) return false;
    chart.xlmFigure = figure;
    if (!window.Plotly) {
      const retry = () => {
        if (!window.Plotly) return setTimeout(retry, 50);
        chart.xlmWaiting = false;
        draw(chart, chart.xlmFigure);
      };
      if (!chart.xlmWaiting) chart.xlmWaiting = setTimeout(retry, 50);
      return true;
    }
    if (!chart.xlmObserved) { chart.xlmObserved = true; resized.observe(chart); }
    chart.classList.toggle("no-figure", !figure);
    if (!figure) { window.Plotly.purge(chart); return true; }
    const name = chart.closest(".block.live-plot-block")?.id || "chart";  // the component's elem_id
    chart.xlmFitWidth = chart.clientWidth;
    window.Plotly.react(chart, figure.data, fitted(chart, name, figure.layout), config(name));
    return true;
  };
  const redrawAll = () => document.querySelectorAll(".live-plot").forEach((chart) => {
    if (chart.xlmFigure && !chart.classList.contains("no-figure")) draw(chart, chart.xlmFigure);
  });
  document.addEventListener("presenter", redrawAll);  // P switched presenter mode
  const chartOf = (id) => document.querySelector(`#${id} .live-plot`);

  // --- The view's elements ----------------------------------------------------------------------------------------
  const LEGEND = '<div class="legend"><span class="tok r1">rank 1</span><span class="tok r10">top 10</span>'
    + '<span class="tok r100">top 100</span><span class="tok r1000">top 1000</span>'
    + '<span class="tok rlow">rarer</span><span class="tok new">chosen here</span></div>';
  const EMPTY = "<em>(empty: the start token alone)</em>";
  const HEADERS = ["position", "id", "BPE piece", "word (Moses token)", "language id", "p given prefix", "rank"];
  const place = (id) => document.querySelector(`#${id} .prose`) ?? document.querySelector(`#${id} .html-container`)
    ?? document.getElementById(id);

  // The text's spans: those from `spans_from` on replace what is drawn there; a streamed record adds only those
  // the page lacks (each holds the whole continuation so far, so records the page skips lose nothing). False when
  // the page lacks positions before `spans_from`: it must ask for the whole text.
  const drawText = (record, root) => {
    let tokens = root.querySelector(".tokens");
    if (!tokens) {
      root.innerHTML = `<div class="tokens"></div>${LEGEND}`;
      tokens = root.querySelector(".tokens");
    }
    const shown = tokens.querySelectorAll(".tok");
    const have = shown.length + 1;  // positions on screen, the unshown start token's too
    if (have < record.spans_from) return false;
    if (record.streaming) {
      tokens.insertAdjacentHTML("beforeend", record.spans.slice(have - record.spans_from).join(""));
    } else {
      const keep = record.spans_from - 1;  // positions kept, after the start token
      if (keep === 0) tokens.innerHTML = "";
      else {
        let last = shown[keep - 1];
        if (last.nextSibling?.nodeType === Node.TEXT_NODE) last = last.nextSibling;  // its gap to the next word
        while (last.nextSibling) last.nextSibling.remove();
      }
      tokens.insertAdjacentHTML("beforeend", record.spans.join(""));
    }
    if (!tokens.querySelector(".tok")) tokens.innerHTML = EMPTY;
    else tokens.querySelector("em")?.remove();
    return true;
  };

  const drawCandidates = (record, root) => {
    root.innerHTML = '<fieldset class="candidates"><legend>Pick the next token</legend>'
      + record.candidates.map((c) => `<label><input type="radio" name="candidate" value="${c.id}">`
        + `<span>${esc(c.token)} (${percent(c.prob)})</span></label>`).join("") + "</fieldset>";
  };

  const drawStatus = (record, root) => {
    const positions = record.ids.length;
    const notes = record.notes.map(esc);
    root.innerHTML = [`Entropy <strong>${record.entropy.toFixed(2)}</strong> nats`,
      `<span class="positions">${counted(positions, "position")}</span>`, ...notes,
      `<a href="${esc(record.explore).replace(/"/g, "&quot;")}">Link to this view</a>`].join(" · ");
  };

  const drawTable = (record, root) => {
    if (!record.table) return;
    const cell = (value) => `<td role="gridcell">${esc(value)}</td>`;
    root.innerHTML = '<table class="token-table"><thead><tr role="row">'
      + HEADERS.map((h) => `<th>${esc(h)}</th>`).join("") + "</tr></thead><tbody>"
      + record.table.map((row) => `<tr role="row">${row.map(cell).join("")}</tr>`).join("") + "</tbody></table>";
  };

  // Everything a record shows. While a continuation streams: its text and count of positions at once, the chart
  // it was drawn from and the status line at most every second, the timeline and the rest when it ends (drawing a
  // chart costs the browser 20-40 ms, on the same cores as the decoding). False when the text needs drawing whole.
  let drawnAt = 0;
  const show = (record) => {
    const text = place("output");
    if (text && !drawText(record, text)) return false;
    const positions = place("status")?.querySelector(".positions");
    if (positions) positions.textContent = counted(record.ids.length, "position");
    if (record.streaming && performance.now() - drawnAt < 1000) return true;
    drawnAt = record.streaming ? performance.now() : 0;
    draw(chartOf("candidates-plot"), candidatesFigure(record));
    if (record.streaming) return true;
    draw(chartOf("timeline-plot"), record.steps.length ? timelineFigure(record.steps) : null);
    for (const [id, drawPart] of [["candidate-list", drawCandidates], ["status", drawStatus], ["inspector", drawTable]]) {
      const root = place(id);
      if (root) drawPart(record, root);
    }
    return true;
  };

  // --- The presenter's page: requests ----------------------------------------------------------------------------
  const page = Math.random().toString(36).slice(2);  // this page's own id: the server drops its older requests
  let controls = null;  // the page's controls by name, as Gradio last gave them (layout.py's Controls)
  let shown = null;  // the record on screen
  let seq = 0;
  let waiting = [];  // actions to send, in order; consecutive views of the text collapse into the latest
  let running = null;  // the request in flight: {abort} for a continuation
  let failed = "";

  // The tokens chosen after the text shown, while the text is the controls' (a new text starts without them).
  const chosen = () => {
    if (!shown || (controls && shown.prompt !== controls.prompt)) return {appended: [], appended_langs: []};
    return {appended: shown.appended, appended_langs: shown.appended_langs};
  };
  // The page state, in the fields xlm_demo/page/requests.py reads: every request carries it, and the sections read it.
  const pageState = (tokens = chosen()) => ({
    prompt: controls.prompt, lang: controls.lang, top_k: controls.top_k, literal: controls.literal,
    continue_lang: controls.continue_lang, ...tokens,
    sampling: {sample: controls.sample, temperature: controls.temperature, top_k: controls.sample_top_k,
      top_p: controls.top_p, seed: controls.seed},
  });
  // Who follows the page state (the page's page-state component, for the sections' events): told when the controls
  // change and when a view has settled, after it is drawn.
  const followers = [];
  const tellSections = () => { if (controls) followers.forEach((told) => told(pageState())); };
  const following = new URLSearchParams(location.search).get("follow");  // a follower's page shows the room's views
  const roomKey = () => document.querySelector("#room-link .room-link[data-key]")?.dataset.key ?? "";
  let tableOpen = false;  // the tokens' table is built only while a person can see it
  const body = (job) => ({
    ...pageState(job.chosen), seq: ++seq, page, action: job.action, choice: job.choice ?? null,
    n_tokens: controls.n_tokens,
    drawn: shown && job.whole !== true ? {ids: shown.ids, langs: shown.langs, typed: shown.typed} : null,
    table: tableOpen, room: roomKey(),
  });

  const say = (sentence) => {
    failed = sentence;
    let banner = document.getElementById("view-error");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "view-error";
      banner.setAttribute("role", "alert");
      place("output")?.parentElement?.before(banner);
    }
    banner.textContent = sentence;
    banner.hidden = !sentence;
  };
  const accepted = (record) => {
    if (shown && record.seq < shown.seq) return;  // an older answer never replaces a newer view
    if (!show(record)) { send({action: "show", whole: true}); return; }
    shown = record;
    if (failed) say("");
    if (!record.streaming) tellSections();
  };

  const post = (path, job, signal) => fetch(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body(job)), signal,
  });
  const refusal = async (response) => (response.status === 409 ? "" : (await response.text()) || "The server refused.");
  const answer = async (job) => {
    const response = await post("view", job);
    if (response.ok) accepted(await response.json());
    else say(await refusal(response));
  };
  // A continuation's records as they come (server-sent events over a POST); Stop aborts it and keeps what came.
  const stream = async (job) => {
    const stopping = new AbortController();
    running = {abort: () => stopping.abort()};
    document.body.classList.add("continuing");  // Stop looks active while there is something to stop
    try {
      const response = await post("view/continue", job, stopping.signal);
      if (!response.ok) { say(await refusal(response)); return; }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (let part = await reader.read(); !part.done; part = await reader.read()) {
        buffer += part.value;
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const event of events) {
          const data = event.split("\n").find((line) => line.startsWith("data: "));
          if (data) accepted(JSON.parse(data.slice(6)));
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") throw error;
      if (shown?.streaming) send({action: "show"});  // stopped: the whole view of what came
    } finally {
      running = null;
      document.body.classList.remove("continuing");
    }
  };
  const pump = async () => {
    if (running || !waiting.length || !controls) return;
    const job = waiting.shift();
    if (job.action === "continue") { await stream(job); pump(); return; }
    running = {abort: () => {}};
    try {
      await answer(job);
    } catch (error) {
      say("The server did not answer; your text is kept. Try again in a moment.");
    } finally {
      running = null;
      pump();
    }
  };
  const send = (job) => {
    const last = waiting.at(-1);
    if (job.action === "show" && last?.action === "show") waiting[waiting.length - 1] = {...last, ...job};
    else waiting.push(job);
    pump();
  };

  // What the page's Gradio events call (layout.py): the controls changed, a button or a candidate was pressed.
  const presenter = {
    controlled(values) {
      if (following) return;
      controls = values;
      if (running) running.abort();  // typing stops a continuation
      send({action: "show"});
      tellSections();
    },
    started(values, restored) {  // the page loaded, its controls and chosen tokens restored from its link
      if (following) return;
      controls = values;
      const {appended = [], appended_langs = []} = restored ?? {};
      send({action: "show", whole: true, chosen: {appended, appended_langs}});
    },
    act(action, choice) {
      if (running?.abort && action !== "continue") running.abort();
      send({action, choice});
    },
    stop() { running?.abort(); },
    table(open) {
      tableOpen = open;
      if (open) send({action: "show"});
    },
    follow(told) {
      followers.push(told);
      tellSections();
    },
  };
  document.addEventListener("change", (event) => {  // a candidate picked from the list
    const input = event.target.closest?.("#candidate-list input[type=radio]");
    if (input) presenter.act("pick", Number(input.value));
  });

  window.xlmCharts = {draw};
  window.xlmView = {show, ...presenter};
})();
