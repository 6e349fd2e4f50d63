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
