// The operator's pages: Overview (queues, throughput, recent failures, the email outbox),
// Queues (pause and resume), Schedules, and Emails (these need a token).
import { useRef, useState } from "preact/hooks";
import { api, query, useGet, usePaged, useSession } from "./api.js";
import { Badge, ErrorBox, Loaded, Pager, Time, WriteButton } from "./ui.jsx";

const COUNTS = ["queued", "scheduled", "running", "retrying", "succeeded", "failed", "cancelled"];
const MAIL_STATES = ["queued", "sending", "sent", "failed"];

// A line of the last values seen (an inline SVG: no style attribute, so the CSP allows it).
function Sparkline({ values, label }) {
  const w = 80, h = 22;
  if (values.length < 2) return <svg class="spark" width={w} height={h} role="img" aria-label={`${label}: gathering`} />;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${((i / (values.length - 1)) * w).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`${label}: last ${values.length} readings, up to ${max}`}>
      <polyline points={pts.join(" ")} fill="none" />
    </svg>
  );
}

export function QueueTable({ queues, onChange, history }) {
  const [busy, setBusy] = useState("");
  const [error, setError] = useState(null);
  const toggle = async (q) => {
    setBusy(q.name);
    setError(null);
    try {
      await api("POST", `/api/queues/${encodeURIComponent(q.name)}/${q.paused ? "resume" : "pause"}`);
      onChange();
    } catch (e) {
      setError(e);
    }
    setBusy("");
  };
  return (
    <>
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table class="queues">
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">State</th>
              {COUNTS.map((c) => (
                <th scope="col" class="num" key={c}>{c}</th>
              ))}
              {history && <th scope="col">Finished / failed</th>}
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {queues.map((q) => (
              <tr key={q.name} data-queue={q.name} data-paused={q.paused ? "yes" : "no"}>
                <th scope="row">
                  <a href={`#/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a>
                </th>
                <td>{q.paused ? <Badge state="paused" /> : <Badge state="active" />}</td>
                {COUNTS.map((c) => (
                  <td class="num" key={c}>{q.counts[c]}</td>
                ))}
                {history && (
                  <td>
                    <Sparkline values={(history[q.name] || []).map((h) => h.succeeded)} label={`${q.name} succeeded`} />
                    <Sparkline values={(history[q.name] || []).map((h) => h.failed)} label={`${q.name} failed`} />
                  </td>
                )}
                <td>
                  <WriteButton class="small" busy={busy === q.name} onClick={() => toggle(q)}>
                    {q.paused ? "Resume" : "Pause"}
                  </WriteButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

// Emails need a token even to read (and tokens configured): without one, say so and ask nothing.
function NeedsToken() {
  return <p class="state empty">Emails need an API token: enter it in the Token field to see them.</p>;
}

function Outbox() {
  const s = useSession();
  return s.token ? <OutboxCounts /> : <NeedsToken />;
}

function OutboxCounts() {
  // The states of the last 50 emails ("50+" past it).
  const got = useGet("/api/emails?limit=50", 10000);
  return (
    <Loaded got={got} isEmpty={(d) => d.items.length === 0} empty="No emails yet.">
      {(d) => (
        <ul class="counts">
          {MAIL_STATES.map((s) => {
            const n = d.items.filter((e) => e.state === s).length;
            return (
              <li key={s}>
                <Badge state={s} /> <span class="num">{n}</span>
              </li>
            );
          })}
          <li class="muted">of the last {d.items.length}{d.has_more ? "+" : ""} emails · <a href="#/emails">all emails</a></li>
        </ul>
      )}
    </Loaded>
  );
}

export function OverviewPage() {
  const history = useRef({});
  const queues = useGet("/api/queues", 3000);
  if (queues.data) {
    // One reading per answer: the window's finished counts, for the sparklines.
    const seen = history.current.__last;
    if (seen !== queues.data) {
      history.current.__last = queues.data;
      for (const q of queues.data.items) {
        const h = (history.current[q.name] = history.current[q.name] || []);
        h.push({ succeeded: q.counts.succeeded, failed: q.counts.failed });
        if (h.length > 30) h.shift();
      }
    }
  }
  const failures = useGet("/api/jobs?state=failed&limit=5", 5000);
  return (
    <section>
      <h1>Overview</h1>
      <h2>Queues</h2>
      <Loaded got={queues} isEmpty={(d) => d.items.length === 0} empty="No queues configured.">
        {(d) => (
          <>
            <QueueTable queues={d.items} onChange={queues.reload} history={history.current} />
            <p class="muted">Succeeded, failed and cancelled count the last {d.window_seconds} s; refreshed every 3 s.</p>
          </>
        )}
      </Loaded>
      <h2>Recent failures</h2>
      <Loaded got={failures} isEmpty={(d) => d.items.length === 0} empty="No failed jobs.">
        {(d) => (
          <ul class="failures">
            {d.items.map((j) => (
              <li key={j.id}>
                <a href={`#/jobs/${j.id}`}>#{j.id} {j.kind}</a> <Time at={j.finished_at} />
                <span class="error-text">{j.last_error || "(the error needs a token)"}</span>
              </li>
            ))}
          </ul>
        )}
      </Loaded>
      <p><a href="#/jobs?state=failed">All failed jobs →</a></p>
      <h2>Email outbox</h2>
      <Outbox />
    </section>
  );
}

export function QueuesPage() {
  const queues = useGet("/api/queues", 3000);
  return (
    <section>
      <h1>Queues</h1>
      <p class="muted">A paused queue keeps its jobs but starts none, on every instance, until resumed.</p>
      <Loaded got={queues} isEmpty={(d) => d.items.length === 0} empty="No queues configured.">
        {(d) => <QueueTable queues={d.items} onChange={queues.reload} />}
      </Loaded>
    </section>
  );
}

export function SchedulesPage() {
  const got = useGet("/api/schedules", 30000);
  return (
    <section>
      <h1>Schedules</h1>
      <Loaded got={got} isEmpty={(d) => d.items.length === 0}
        empty="No schedules: they are configured in the config file's [[schedules]] tables.">
        {(d) => (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th><th scope="col">Pipeline</th><th scope="col">Cron</th>
                  <th scope="col">Time zone</th><th scope="col">Next run</th><th scope="col">Last slot</th><th scope="col">Missed</th>
                </tr>
              </thead>
              <tbody>
                {d.items.map((s) => (
                  <tr key={s.name}>
                    <th scope="row">{s.name}</th><td>{s.pipeline}</td><td><code>{s.cron}</code></td><td>{s.timezone}</td>
                    <td><Time at={s.next_run} /></td><td><Time at={s.last_slot} /></td><td>{s.missed}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
    </section>
  );
}

export function EmailsPage() {
  const s = useSession();
  return (
    <section>
      <h1>Emails</h1>
      {s.token ? <EmailList /> : <NeedsToken />}
    </section>
  );
}

function EmailList() {
  const [state, setState] = useState("");
  const paged = usePaged(`/api/emails${query({ state, limit: 50 })}`, 10000);
  return (
    <>
      <label class="inline">
        State{" "}
        <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">any</option>
          {MAIL_STATES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <Loaded got={paged} isEmpty={(d) => d.items.length === 0} empty="No emails.">
        {(d) => (
          <div class="table-wrap">
            <table>
              <thead>
                <tr><th scope="col">Email</th><th scope="col">State</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col">Attempts</th><th scope="col">Created</th></tr>
              </thead>
              <tbody>
                {d.items.map((e) => (
                  <tr key={e.id}>
                    <td><a href={`#/emails/${e.id}`}>#{e.id}</a></td><td><Badge state={e.state} /></td><td>{e.to.join(", ")}</td>
                    <td>{e.subject}</td><td class="num">{e.attempts}</td><td><Time at={e.created_at} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      <Pager paged={paged} />
    </>
  );
}

export function EmailPage({ id }) {
  const s = useSession();
  const got = useGet(s.token ? `/api/emails/${id}` : null);
  if (!s.token)
    return (
      <section>
        <h1>Email #{id}</h1>
        <NeedsToken />
      </section>
    );
  return (
    <section>
      <h1>Email #{id}</h1>
      <Loaded got={got}>
        {(e) => (
          <>
            <dl class="card facts">
              <dt>State</dt><dd><Badge state={e.state} /></dd>
              <dt>From</dt><dd>{e.from}</dd>
              <dt>To</dt><dd>{e.to.join(", ")}</dd>
              {e.cc.length > 0 && <><dt>Cc</dt><dd>{e.cc.join(", ")}</dd></>}
              <dt>Subject</dt><dd>{e.subject}</dd>
              <dt>Message-ID</dt><dd><code>{e.message_id}</code></dd>
              <dt>Attempts</dt><dd>{e.attempts}</dd>
              <dt>Created</dt><dd><Time at={e.created_at} /></dd>
            </dl>
            <details open>
              <summary>Everything creatord knows of it</summary>
              <pre>{JSON.stringify(e, null, 2)}</pre>
            </details>
          </>
        )}
      </Loaded>
    </section>
  );
}

