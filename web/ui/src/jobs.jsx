// Generate (a form from GET /api/pipelines and the OpenAPI schema of the parameters), the jobs list
// with filters and bulk retry, and a job's page: its steps live over Server-Sent Events.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, describe, query, useGet, usePaged } from "./api.js";
import { Gallery } from "./creators.jsx";
import { Badge, ErrorBox, go, JobsTable, Loaded, Loading, ms, Pager, Time, WriteButton } from "./ui.jsx";

const TERMINAL = ["succeeded", "failed", "cancelled"];
const JOB_STATES = ["queued", "scheduled", "running", "retrying", "succeeded", "failed", "cancelled"];
const BUILTIN = ["generate", "diagnostic"];

// The parameters a built-in pipeline takes, from the OpenAPI document's GenerateParams.
function paramFields(doc, pipeline) {
  const props = doc?.components?.schemas?.GenerateParams?.properties || {};
  return Object.entries(props).filter(([, p]) => {
    const diagnosticOnly = (p.description || "").includes("diagnostic");
    return pipeline === "diagnostic" ? diagnosticOnly : !diagnosticOnly;
  });
}

export function GeneratePage({ params }) {
  const pipelines = useGet("/api/pipelines");
  const doc = useGet("/openapi.json");
  const creators = useGet("/api/creators?limit=100");
  const [creator, setCreator] = useState(params.get("creator") || "");
  const [pipeline, setPipeline] = useState("generate");
  const [values, setValues] = useState({});
  const [json, setJson] = useState("{}");
  const [extra, setExtra] = useState({ priority: "", max_attempts: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!creator && creators.data?.items.length) setCreator(String(creators.data.items[0].id));
  }, [creators.data]);
  if (!pipelines.data || !creators.data)
    return pipelines.error || creators.error ? (
      <ErrorBox error={pipelines.error || creators.error} retry={pipelines.reload} />
    ) : (
      <Loading what="Loading the pipelines" />
    );
  const chosen = pipelines.data.items.find((p) => p.name === pipeline);
  const builtin = BUILTIN.includes(pipeline);
  const fields = builtin ? paramFields(doc.data, pipeline) : [];
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let p = {};
    if (builtin) {
      for (const [k, v] of Object.entries(values)) if (v !== "") p[k] = Number(v);
    } else {
      try {
        p = JSON.parse(json || "{}");
      } catch (err) {
        setError(new Error(`Parameters are not JSON: ${err.message}`));
        return;
      }
    }
    const body = { pipeline, params: p };
    for (const [k, v] of Object.entries(extra)) if (v !== "") body[k] = Number(v);
    setBusy(true);
    try {
      const job = await api("POST", `/api/creators/${creator}/generate`, body);
      go(`#/jobs/${job.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <section>
      <h1>Generate</h1>
      {creators.data.items.length === 0 ? (
        <p class="state empty">
          No creators yet. <a href="#/creators">Create one</a> first.
        </p>
      ) : (
        <form class="card form" onSubmit={submit} aria-label="Start a pipeline">
          <label>
            Creator
            <select name="creator" value={creator} onChange={(e) => setCreator(e.currentTarget.value)}>
              {creators.data.items.map((c) => (
                <option value={c.id} key={c.id}>{c.name} (@{c.handle})</option>
              ))}
            </select>
          </label>
          <label>
            Pipeline
            <select name="pipeline" value={pipeline} onChange={(e) => setPipeline(e.currentTarget.value)}>
              {pipelines.data.items.map((p) => (
                <option value={p.name} key={p.name}>{p.name}</option>
              ))}
            </select>
          </label>
          {chosen && (
            <p class="wide muted">
              {chosen.description} Steps: {chosen.steps.map((s) => s.name).join(" → ")} · queue {chosen.queue}
            </p>
          )}
          {fields.map(([name, p]) => (
            <label key={name}>
              {name.replace(/_/g, " ")}
              <input name={name} type="number" min={p.minimum} max={p.maximum} placeholder={p.default ?? ""}
                value={values[name] ?? ""} onInput={(e) => setValues({ ...values, [name]: e.currentTarget.value })} />
            </label>
          ))}
          {!builtin && (
            <label class="wide">
              Parameters (JSON)
              <textarea name="params" rows={4} value={json} onInput={(e) => setJson(e.currentTarget.value)} />
            </label>
          )}
          <label>
            priority
            <input name="priority" type="number" min={-100} max={100} placeholder="0" value={extra.priority}
              onInput={(e) => setExtra({ ...extra, priority: e.currentTarget.value })} />
          </label>
          <label>
            max attempts
            <input name="max_attempts" type="number" min={1} max={100} placeholder="3" value={extra.max_attempts}
              onInput={(e) => setExtra({ ...extra, max_attempts: e.currentTarget.value })} />
          </label>
          <ErrorBox error={error} />
          <div class="actions wide">
            <WriteButton type="submit" class="primary" busy={busy}>
              {busy ? "Starting…" : "Start"}
            </WriteButton>
          </div>
        </form>
      )}
    </section>
  );
}

export function JobsPage({ params }) {
  const [f, setF] = useState({
    state: params.get("state") || "",
    queue: params.get("queue") || "",
    kind: params.get("kind") || "",
    creator_id: params.get("creator_id") || "",
  });
  const queues = useGet("/api/queues");
  const pipelines = useGet("/api/pipelines");
  const paged = usePaged(`/api/jobs${query({ ...f, limit: 50 })}`, 4000);
  const [bulk, setBulk] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const retryFailed = async () => {
    setBulk({ done: 0, failed: 0, total: 0, running: true, error: null });
    const found = [];
    let cursor = "";
    try {
      do {
        const page = await api("GET", `/api/jobs${query({ ...f, state: "failed", limit: 100, cursor })}`);
        found.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor && found.length < 1000);
    } catch (error) {
      setBulk({ done: 0, failed: 0, total: 0, running: false, error });
      return;
    }
    let done = 0, failed = 0, lastError = null;
    setBulk({ done, failed, total: found.length, running: true, error: null });
    const work = found.slice();
    const worker = async () => {
      while (work.length) {
        const j = work.shift();
        try {
          await api("POST", `/api/jobs/${j.id}/retry`);
          done++;
        } catch (e) {
          failed++;
          lastError = e;
        }
        setBulk({ done, failed, total: found.length, running: true, error: lastError });
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    setBulk({ done, failed, total: found.length, running: false, error: lastError });
    paged.reload();
  };
  return (
    <section>
      <header class="page-head">
        <h1>Jobs</h1>
        <WriteButton onClick={retryFailed} busy={bulk?.running}>Retry all failed</WriteButton>
      </header>
      {bulk && (
        <p class="card" role="status">
          {bulk.running && bulk.total === 0 ? "Finding failed jobs…" : `Retried ${bulk.done} of ${bulk.total} failed jobs`}
          {bulk.failed ? `, ${bulk.failed} refused: ${describe(bulk.error)}` : bulk.error && !bulk.total ? `: ${describe(bulk.error)}` : ""}
        </p>
      )}
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter jobs">
        <label>
          State
          <select name="state" value={f.state} onChange={set("state")}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Queue
          <select name="queue" value={f.queue} onChange={set("queue")}>
            <option value="">any</option>
            {(queues.data?.items || []).map((q) => (
              <option key={q.name}>{q.name}</option>
            ))}
          </select>
        </label>
        <label>
          Pipeline
          <select name="kind" value={f.kind} onChange={set("kind")}>
            <option value="">any</option>
            {(pipelines.data?.items || []).map((p) => (
              <option key={p.name}>{p.name}</option>
            ))}
          </select>
        </label>
        <label>
          Creator id
          <input name="creator_id" type="number" min={1} value={f.creator_id} onInput={set("creator_id")} />
        </label>
      </form>
      <Loaded got={paged} isEmpty={(d) => d.items.length === 0} empty="No jobs match these filters.">
        {(d) => <JobsTable jobs={d.items} />}
      </Loaded>
      <Pager paged={paged} />
    </section>
  );
}

// Follows a job over SSE: step states, progress and messages as they happen. Resumes after the
// last event seen, by EventSource's own Last-Event-ID or, when the browser gave up, by
// ?last_event_id=. onChange(kind) tells the page that something worth refetching happened.
function useJobEvents(id, active, onChange) {
  const [live, setLive] = useState({ steps: {}, conn: "idle" });
  const last = useRef(0);
  const cb = useRef(onChange);
  cb.current = onChange;
  useEffect(() => {
    if (!active) return;
    if (active > 1) setLive({ steps: {}, conn: "connecting" });  // a retry: a new run of the steps
    let es = null, timer = null, stopped = false;
    const open = () => {
      es = new EventSource(`/api/jobs/${id}/events${last.current ? `?last_event_id=${last.current}` : ""}`);
      setLive((l) => ({ ...l, conn: "connecting" }));
      es.onopen = () => setLive((l) => ({ ...l, conn: "live" }));
      const on = (name) =>
        es.addEventListener(name, (e) => {
          const seq = Number(e.lastEventId);
          if (seq && seq <= last.current) return;  // already applied before a reconnect
          if (seq) last.current = seq;
          let d = {};
          try {
            d = JSON.parse(e.data);
          } catch {}
          if (name.startsWith("step.")) {
            setLive((l) => {
              const s = { ...(l.steps[d.step] || { messages: [] }) };
              if (name === "step.started") Object.assign(s, { state: "running", progress: 0, attempt: d.attempt });
              if (name === "step.progress") {
                s.progress = d.progress;
                if (d.message) s.messages = [...s.messages.slice(-4), d.message];
              }
              if (name === "step.finished") Object.assign(s, { state: d.state, error: d.error, progress: d.state === "succeeded" ? 1 : s.progress });
              return { ...l, steps: { ...l.steps, [d.step]: s } };
            });
          }
          if (name === "job.finished") {
            stopped = true;
            es.close();
            setLive((l) => ({ ...l, conn: "finished" }));
          }
          cb.current(name, d);
        });
      ["job.queued", "job.scheduled", "job.started", "job.retrying", "job.finished", "job.released",
        "job.cancel_requested", "step.started", "step.progress", "step.finished"].forEach(on);
      es.onerror = () => {
        if (stopped) return;
        if (es.readyState === EventSource.CLOSED) {
          // The browser will not retry (an error status, or 204: nothing more). The page
          // refetches the job, which ends this when it finished; else try again after the
          // last event seen.
          setLive((l) => ({ ...l, conn: "reconnecting" }));
          cb.current("stream.closed", {});
          timer = setTimeout(open, 2000);
        } else setLive((l) => ({ ...l, conn: "reconnecting" }));
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (es) es.close();
    };
  }, [id, active]);
  return live;
}

function Step({ step, live }) {
  // The fetched job is the truth; live events run ahead of it while it is pending or running.
  const state = live?.state && (step.state === "pending" || step.state === "running") ? live.state : step.state;
  const progress = state === "succeeded" ? 1 : state === "running" ? live?.progress ?? 0 : 0;
  const messages = live?.messages?.length ? live.messages : step.log ? step.log.trim().split("\n").slice(-5) : [];
  return (
    <li class={`step s-${state}`} data-step={step.name} data-state={state}>
      <div class="step-head">
        <strong>{step.name}</strong>
        <Badge state={state} />
        <span class="muted num">{ms(step.duration_ms)}</span>
        <span class="muted">attempt {step.attempt}</span>
      </div>
      <progress max="1" value={progress ?? 0} aria-label={`${step.name} progress`} />
      {messages.length > 0 && <pre class="log">{messages.join("\n")}</pre>}
      {(live?.error || step.error) && <p class="error-text">{step.error || live.error}</p>}
      {step.output !== undefined && step.output !== null && (
        <details>
          <summary>output</summary>
          <pre>{JSON.stringify(step.output, null, 2)}</pre>
        </details>
      )}
    </li>
  );
}

export function JobPage({ id }) {
  const got = useGet(`/api/jobs/${id}`);
  const job = got.data;
  const [epoch, setEpoch] = useState(0);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const imagesPath = job?.creator_id ? `/api/creators/${job.creator_id}/images?limit=50` : null;
  const images = useGet(imagesPath);
  const refetch = useRef(null);
  const active = !!job && !TERMINAL.includes(job.state);
  const live = useJobEvents(id, active ? epoch + 1 : 0, (name) => {
    if (name === "step.progress") return;
    // Refetch (at most every 300 ms) for timings, outputs and the job's own state.
    if (!refetch.current)
      refetch.current = setTimeout(() => {
        refetch.current = null;
        got.reload();
        if (name !== "step.started") images.reload();
      }, 300);
  });
  useEffect(() => () => clearTimeout(refetch.current), []);
  if (!job) return got.error ? <ErrorBox error={got.error} retry={got.reload} /> : <Loading what="Loading the job" />;
  const act = async (what) => {
    setBusy(true);
    setError(null);
    try {
      await api("POST", `/api/jobs/${id}/${what}`);
      got.reload();
      if (what === "retry") setEpoch((n) => n + 1);
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  const since = Date.parse(job.created_at) - 1000;
  const made = (images.data?.items || []).filter((im) => im.source !== "upload" && Date.parse(im.created_at) >= since);
  return (
    <section>
      <header class="page-head">
        <h1>
          Job #{job.id} <Badge state={job.state} />
        </h1>
        <div class="actions">
          {!TERMINAL.includes(job.state) && (
            <WriteButton class="danger" onClick={() => act("cancel")} busy={busy || job.cancel_requested}>
              {job.cancel_requested ? "Cancelling…" : "Cancel"}
            </WriteButton>
          )}
          {(job.state === "failed" || job.state === "cancelled") && (
            <WriteButton class="primary" onClick={() => act("retry")} busy={busy}>Retry</WriteButton>
          )}
        </div>
      </header>
      <ErrorBox error={error} />
      <dl class="card facts">
        <dt>Pipeline</dt>
        <dd>{job.kind} · queue {job.queue} · priority {job.priority}</dd>
        <dt>Creator</dt>
        <dd>{job.creator_id ? <a href={`#/creators/${job.creator_id}`}>#{job.creator_id}</a> : "—"}</dd>
        <dt>Attempt</dt>
        <dd>
          {job.attempt} of {job.max_attempts}
          {job.manual_retries ? ` · retried by hand ${job.manual_retries}×` : ""}
        </dd>
        <dt>Created</dt>
        <dd><Time at={job.created_at} /></dd>
        <dt>Started</dt>
        <dd><Time at={job.started_at} /></dd>
        <dt>Finished</dt>
        <dd><Time at={job.finished_at} /></dd>
        <dt>Live</dt>
        <dd class="conn" data-conn={active ? live.conn : "done"}>
          {active ? live.conn : "finished"}
        </dd>
      </dl>
      {job.last_error && job.state !== "succeeded" && <p class="state error" role="alert">{job.last_error}</p>}
      <h2>Steps</h2>
      {job.steps && job.steps.length ? (
        <ol class="timeline">
          {job.steps.map((s) => (
            <Step key={s.name} step={s} live={live.steps[s.name]} />
          ))}
        </ol>
      ) : (
        <p class="state empty">This job has no steps.</p>
      )}
      {job.creator_id && (
        <>
          <h2>Images from this job</h2>
          {made.length ? <Gallery images={made} onOpen={(im) => window.open(im.url, "_blank", "noopener")} /> : (
            <p class="state empty">{TERMINAL.includes(job.state) ? "This job stored no images." : "Images appear here as they are stored."}</p>
          )}
        </>
      )}
      {job.result !== undefined && job.result !== null && (
        <>
          <h2>Result</h2>
          <pre class="card result">{JSON.stringify(job.result, null, 2)}</pre>
        </>
      )}
      {job.payload !== undefined && (
        <details>
          <summary>Payload</summary>
          <pre>{JSON.stringify(job.payload, null, 2)}</pre>
        </details>
      )}
    </section>
  );
}
