// Retrain page: poll the running job once a second so the bar moves while the worker trains; reload when it ends.
(function () {
  "use strict";
  const job = document.getElementById("job");
  if (!job) return;
  const jobId = job.dataset.jobId;
  const timer = setInterval(async () => {
    const response = await fetch(`/admin/jobs/${jobId}`, {headers: {accept: "application/json"}});
    if (!response.ok) return;
    const state = await response.json();
    document.getElementById("job-progress").value = state.progress;
    document.getElementById("job-status").textContent = state.status;
    document.getElementById("job-message").textContent = state.message;
    document.getElementById("job-log").textContent = state.log;
    if (state.status === "succeeded" || state.status === "failed") {
      clearInterval(timer);
      window.location.href = `/admin/models?job=${jobId}`;
    }
  }, 1000);
})();
