() => {
  // The presenter's page while it shares a room: a stream held open to the server says the page is still here.
  // The room ends about a minute after the last such stream closed, so a room never outlives its page long.
  let held = null;  // {key, source}
  const watch = () => {
    const link = document.querySelector(".room-link[data-key]");
    const key = link ? link.dataset.key : null;
    if (held && held.key !== key) {
      held.source.close();
      held = null;
    }
    if (key && !held) {
      const address = `room/${encodeURIComponent(link.dataset.code)}/presence?key=${encodeURIComponent(key)}`;
      held = {key, source: new EventSource(address)};
    }
  };
  new MutationObserver(watch).observe(document.body, {childList: true, subtree: true});
}
