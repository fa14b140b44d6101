// Small pieces every page uses: the hash router, the states of a list (loading, empty, error),
// paging, state badges, times, and the jobs table.
import { useEffect, useState } from "preact/hooks";
import { describe, useSession } from "./api.js";

// Routes are hashes (#/creators/3?x=1): the server serves one page, and deep links still work.
export function useRoute() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const [path, qs] = hash.slice(1).split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(qs || "") };
}
export const go = (to) => (location.hash = to);

export function Loading({ what = "Loading" }) {
  return (
    <p class="state loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {what}…
    </p>
  );
}
export function Empty({ children }) {
  return <p class="state empty">{children}</p>;
}
export function ErrorBox({ error, retry }) {
  if (!error) return null;
  return (
    <div class="state error" role="alert">
      <span>{describe(error)}</span>
      {retry && (
        <button type="button" class="small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

// The three looks of a fetched thing: loading (first time), error, empty; else render(data).
export function Loaded({ got, empty, isEmpty, children }) {
  if (got.error && !got.data) return <ErrorBox error={got.error} retry={got.reload} />;
  if (!got.data) return <Loading />;
  return (
    <>
      {got.error && <ErrorBox error={got.error} retry={got.reload} />}
      {isEmpty && isEmpty(got.data) ? <Empty>{empty}</Empty> : children(got.data)}
    </>
  );
}

export function Pager({ paged, label = "page" }) {
  if (!paged.hasPrev && !paged.hasNext) return null;
  return (
    <nav class="pager" aria-label={`${label}s`}>
      <button type="button" class="small" disabled={!paged.hasPrev} onClick={paged.prev}>
        ← Newer
      </button>
      <span>
        {label} {paged.pageNo}
      </span>
      <button type="button" class="small" disabled={!paged.hasNext} onClick={paged.next}>
        Older →
      </button>
    </nav>
  );
}

export function Badge({ state }) {
  return <span class={`badge s-${state}`}>{state}</span>;
}

export function Time({ at }) {
  if (!at) return <span class="muted">—</span>;
  const d = new Date(at);
  return (
    <time datetime={at} title={at}>
      {d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" })}
    </time>
  );
}
export function ms(n) {
  if (n === null || n === undefined) return "—";
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
}

// A write button: disabled in read-only mode (a 401 without a token), with why.
export function WriteButton({ children, busy, disabled, title, type = "button", ...rest }) {
  const s = useSession();
  return (
    <button
      type={type}
      disabled={busy || s.readOnly || disabled}
      title={s.readOnly ? "Read-only: enter a token to make changes" : title}
      {...rest}
    >
      {children}
    </button>
  );
}

export function JobsTable({ jobs, showCreator = true }) {
  return (
    <div class="table-wrap">
      <table class="jobs">
        <thead>
          <tr>
            <th scope="col">Job</th>
            <th scope="col">Pipeline</th>
            <th scope="col">State</th>
            <th scope="col">Queue</th>
            {showCreator && <th scope="col">Creator</th>}
            <th scope="col">Attempt</th>
            <th scope="col">Progress</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-job={j.id}>
              <td>
                <a href={`#/jobs/${j.id}`}>#{j.id}</a>
              </td>
              <td>{j.kind}</td>
              <td>
                <Badge state={j.state} />
              </td>
              <td>{j.queue}</td>
              {showCreator && <td>{j.creator_id ? <a href={`#/creators/${j.creator_id}`}>{j.creator_id}</a> : "—"}</td>}
              <td class="num">
                {j.attempt}/{j.max_attempts}
              </td>
              <td>
                <progress max="1" value={j.progress} aria-label={`job ${j.id} progress`} />
              </td>
              <td>
                <Time at={j.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
