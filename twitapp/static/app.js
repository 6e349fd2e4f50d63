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
