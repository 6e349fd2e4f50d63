// Live character counters: a textarea with data-counter="ID" and data-max="N" updates the element ID.
document.addEventListener("DOMContentLoaded", () => {
  for (const area of document.querySelectorAll("textarea[data-counter]")) {
    const out = document.getElementById(area.dataset.counter);
    const max = Number(area.dataset.max);
    if (!out) continue;
    const update = () => {
      // Count code points, not UTF-16 units, so an emoji counts once.
      const used = Array.from(area.value).length;
      out.textContent = `${used} / ${max}`;
      out.classList.toggle("over", used > max);
    };
    area.addEventListener("input", update);
    update();
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
