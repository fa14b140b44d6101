// The dashboard's shell: navigation, the token field, the offline and read-only banners, and
// the page for the current route (#/...).
import { render } from "preact";
import { useState } from "preact/hooks";
import { setToken, useSession } from "./api.js";
import { CreatorPage, CreatorsPage } from "./creators.jsx";
import { GeneratePage, JobPage, JobsPage } from "./jobs.jsx";
import { EmailPage, EmailsPage, OverviewPage, QueuesPage, SchedulesPage } from "./ops.jsx";
import { useRoute } from "./ui.jsx";
import "./style.css";

const NAV = [
  ["", "Overview"],
  ["creators", "Creators"],
  ["generate", "Generate"],
  ["jobs", "Jobs"],
  ["queues", "Queues"],
  ["schedules", "Schedules"],
  ["emails", "Emails"],
];

function TokenField() {
  const s = useSession();
  const [value, setValue] = useState("");
  if (s.token)
    return (
      <div class="token">
        <span class="muted">Token set</span>
        <button type="button" class="small" onClick={() => setToken("")}>Clear token</button>
      </div>
    );
  return (
    <form class="token" onSubmit={(e) => { e.preventDefault(); setToken(value); setValue(""); }}>
      <label>
        <span class="sr-only">API token</span>
        <input type="password" name="token" placeholder="API token" autocomplete="off" value={value}
          onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit" class="small">Use token</button>
    </form>
  );
}

function Page({ route }) {
  const [top, id] = route.parts;
  switch (top || "") {
    case "":
      return <OverviewPage />;
    case "creators":
      return id ? <CreatorPage id={id} key={id} /> : <CreatorsPage />;
    case "generate":
      return <GeneratePage params={route.params} />;
    case "jobs":
      return id ? <JobPage id={id} key={id} /> : <JobsPage params={route.params} key={route.params.toString()} />;
    case "queues":
      return <QueuesPage />;
    case "schedules":
      return <SchedulesPage />;
    case "emails":
      return id ? <EmailPage id={id} key={id} /> : <EmailsPage />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p class="state empty">There is no page here. <a href="#/">Back to the overview</a>.</p>
        </section>
      );
  }
}

function App() {
  const route = useRoute();
  const s = useSession();
  const top = route.parts[0] || "";
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">creatord</a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([k, label]) => (
              <li key={k}>
                <a href={`#/${k}`} aria-current={top === k ? "page" : undefined}>{label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <TokenField />
      </header>
      {!s.online && (
        <p class="banner offline" role="status">Offline: showing what was last loaded; changes wait until you are back.</p>
      )}
      {s.readOnly && (
        <p class="banner readonly" role="status">
          Read-only: this server needs an API token for changes. Enter it in the Token field to make changes.
        </p>
      )}
      <main id="main" tabindex="-1">
        <Page route={route} />
      </main>
      <footer class="muted">
        <a href="/docs">API documentation</a> · uses only the public API
      </footer>
    </>
  );
}

const root = document.getElementById("app");
root.textContent = "";  // the "Loading" placeholder the page shows until this script runs
render(<App />, root);
