// Live character counters: a textarea with data-counter="ID" and data-max="N" updates the element ID.
// A post box of the compare form (data-posts) may hold a thread, one post per block separated by a blank
// line; its counter then counts the posts and the longest one.
const BLANK_LINE = /\n[ \t]*\n/;

function watchCounter(area) {
  const out = document.getElementById(area.dataset.counter);
  const max = Number(area.dataset.max);
  if (!out) return;
  const update = () => {
    // Count code points, not UTF-16 units, so an emoji counts once.
    const blocks = "posts" in area.dataset ? area.value.split(BLANK_LINE).filter((b) => b.trim()) : [area.value];
    const lengths = blocks.map((b) => Array.from(b).length);
    const longest = Math.max(0, ...lengths);
    out.textContent = lengths.length > 1 ? `${lengths.length} posts, the longest ${longest} / ${max}` : `${longest} / ${max}`;
    out.classList.toggle("over", longest > max);
  };
  area.addEventListener("input", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const area of document.querySelectorAll("textarea[data-counter]")) watchCounter(area);
});

// "+ add a post": a form with a thread's boxes (data-thread) gets a button that adds another box, each
// added one with a button that takes it out again, up to data-max-posts boxes.
function threadInput(list, button) {
  const max = Number(list.dataset.maxPosts);
  const first = list.querySelector("textarea");
  let made = list.querySelectorAll("textarea").length;
  const renumber = () => {
    const boxes = list.querySelectorAll("li");
    boxes.forEach((item, i) => {
      if (i === 0) return;
      item.querySelector("textarea").setAttribute("aria-label", `Post ${i + 1}`);
      item.querySelector(".remove-post")?.setAttribute("aria-label", `Remove post ${i + 1}`);
    });
    button.disabled = boxes.length >= max;
  };
  button.hidden = false;
  for (const note of list.parentElement.querySelectorAll(".with-script")) note.hidden = false;
  button.addEventListener("click", () => {
    made += 1;
    const id = `${first.id}-${made}`;
    const item = document.createElement("li");
    item.className = "thread-box";
    const area = document.createElement("textarea");
    Object.assign(area, { id, name: "text", rows: 3, placeholder: "The next post…" });
    area.dataset.counter = `${id}-count`;
    area.dataset.max = first.dataset.max;
    area.dataset.posts = "";
    area.setAttribute("aria-describedby", first.getAttribute("aria-describedby"));
    const counter = document.createElement("span");
    Object.assign(counter, { id: `${id}-count`, className: "counter" });
    counter.setAttribute("aria-live", "polite");
    item.append(area, counter);
    list.append(item);
    removable(item);
    watchCounter(area);
    renumber();
    area.focus();
  });
  // Every box but the first can be taken out, those the server drew again (a refused form) included.
  const removable = (item) => {
    const remove = document.createElement("button");
    Object.assign(remove, { type: "button", className: "link-button remove-post", textContent: "Remove" });
    remove.addEventListener("click", () => {
      item.remove();
      renumber();
      first.focus();
    });
    item.append(remove);
  };
  list.querySelectorAll("li").forEach((item, i) => {
    if (i > 0) removable(item);
  });
  renumber();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const list of document.querySelectorAll("[data-thread]")) {
    const button = list.closest("form")?.querySelector("[data-add-post]");
    if (button) threadInput(list, button);
  }
});

// Jobs: a section with data-job-url polls that JSON endpoint and updates its progress bar and message
// in place; when the job ends well the page reloads to show what it stored.
const JOB_POLL_MS = 700;

function watchJob(panel) {
  const bar = panel.querySelector("progress");
  const message = panel.querySelector(".job-message");
  const error = panel.querySelector(".job-error");
  const poll = async () => {
    let job;
    try {
      const response = await fetch(panel.dataset.jobUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`status ${response.status}`);
      job = await response.json();
    } catch (err) {
      message.textContent = "Lost touch with the server; trying again…";
      setTimeout(poll, JOB_POLL_MS * 3);
      return;
    }
    bar.max = Math.max(job.total, 1);
    bar.value = job.total ? job.done : job.finished ? 1 : 0;
    message.textContent = job.message;
    panel.className = `card job job-${job.state}`;
    if (job.error) {
      error.textContent = job.error;
      error.hidden = false;
    }
    if (!job.finished) {
      setTimeout(poll, JOB_POLL_MS);
    } else if (job.state === "done") {
      panel.dataset.finished = "yes";
      setTimeout(() => window.location.reload(), 400);
    } else {
      panel.dataset.finished = "yes";
    }
  };
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const panel of document.querySelectorAll("[data-job-url]")) {
    if (panel.dataset.finished !== "yes") watchJob(panel);
  }
});

// Live topic (the first page of a network's search): poll the topic's JSON with since_id, put new posts on
// top, and redraw the mix, which counts every post of the topic, not only this page's. The page says how
// often anything new can arrive (data-poll-seconds: X searches are shared for that long).
function followTopic(panel) {
  const TOPIC_POLL_MS = 1000 * Math.max(5, Number(panel.dataset.pollSeconds) || 5);
  const list = panel.querySelector("#topic-posts");
  const status = panel.querySelector("#topic-status");
  const chart = panel.querySelector("#topic-mix svg");
  const barX = Number(chart.dataset.barX);
  const barWidth = Number(chart.dataset.barWidth);
  const counts = { negative: 0, neutral: 0, positive: 0 };
  for (const bar of chart.querySelectorAll("rect[data-label]")) counts[bar.dataset.label] = Number(bar.dataset.count);
  const redraw = () => {
    const sum = counts.negative + counts.neutral + counts.positive;
    const total = Math.max(1, sum);
    const parts = [];
    for (const label of ["positive", "neutral", "negative"]) {
      const width = (barWidth * counts[label]) / total;
      const share = Math.round((100 * counts[label]) / total);
      const bar = chart.querySelector(`rect[data-label="${label}"]`);
      bar.setAttribute("width", width.toFixed(1));
      bar.dataset.count = counts[label];
      const count = chart.querySelector(`text.topic-mix-count[data-label="${label}"]`);
      count.setAttribute("x", (barX + 6 + width).toFixed(1));
      count.textContent = `${counts[label].toLocaleString("en")} · ${share}%`;
      parts.push(`${counts[label]} ${label} (${share}%)`);
    }
    chart.querySelector("title").textContent = `Sentiment mix: ${parts.join(", ")}`;
    panel.querySelector("#topic-total").textContent = `${sum.toLocaleString("en")} posts`;
  };
  const add = (post) => {
    const item = document.createElement("li");
    item.className = "post fresh";
    item.dataset.label = post.label;
    const text = document.createElement("p");
    const badge = document.createElement("span");
    badge.className = `label label-${post.label}`;
    badge.textContent = post.label;
    text.append(badge, ` ${post.text}`);
    const meta = document.createElement("p");
    meta.className = "meta";
    const sign = post.score >= 0 ? "+" : "";
    meta.textContent = `${post.username ? `@${post.username} · ` : ""}${post.created_at.slice(0, 16).replace("T", " ")} · score ${sign}${post.score.toFixed(2)}`;
    item.append(text, meta);
    list.querySelector("li.empty")?.remove();
    list.prepend(item);
    counts[post.label] += 1;
  };
  const poll = async () => {
    const url = new URL(panel.dataset.topicUrl, window.location.href);
    if (panel.dataset.newestId) url.searchParams.set("since_id", panel.dataset.newestId);
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.message || `status ${response.status}`);
      for (const post of body.posts.slice().reverse()) add(post);
      if (body.newest_id) panel.dataset.newestId = body.newest_id;
      if (body.posts.length) redraw();
      status.textContent = body.posts.length ? `${body.posts.length} new.` : "";
    } catch (err) {
      status.textContent = `Could not refresh: ${err.message}. Trying again…`;
    }
    setTimeout(poll, TOPIC_POLL_MS);
  };
  setTimeout(poll, TOPIC_POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-topic-url]");
  if (panel) followTopic(panel);
});

// Range inputs with data-show="ID" write their value into that element as they move.
document.addEventListener("DOMContentLoaded", () => {
  for (const range of document.querySelectorAll("input[type=range][data-show]")) {
    const out = document.getElementById(range.dataset.show);
    if (!out) continue;
    const update = () => {
      out.textContent = Number(range.value).toFixed(1);
    };
    range.addEventListener("input", update);
    update();
  }
});
