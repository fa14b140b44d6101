// Creators: the searchable, paged list with a create form; a creator's page with edit, delete,
// its gallery (drag-and-drop upload with progress, full size on click) and its jobs.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, describe, query, upload, useGet, usePaged } from "./api.js";
import { ErrorBox, go, JobsTable, Loaded, Loading, Pager, Time, WriteButton } from "./ui.jsx";

function tagsOf(text) {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

// The fields of a creator, for create and edit. onSave(body) returns a promise.
function CreatorForm({ initial, onSave, onCancel, submitLabel }) {
  const [f, setF] = useState({
    name: initial?.name || "",
    handle: initial?.handle || "",
    email: initial?.email || "",
    bio: initial?.bio || "",
    tags: (initial?.tags || []).join(", "),
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = { name: f.name, handle: f.handle, bio: f.bio, tags: tagsOf(f.tags), email: f.email.trim() || null };
    try {
      await onSave(body);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const bad = (field) => error && error.field === field;
  return (
    <form class="card form" onSubmit={submit} aria-label={submitLabel}>
      <label>
        Name
        <input name="name" required maxLength={200} value={f.name} onInput={set("name")} aria-invalid={bad("name")} />
      </label>
      <label>
        Handle
        <input name="handle" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*" value={f.handle}
          onInput={set("handle")} aria-invalid={bad("handle")} />
      </label>
      <label>
        Email
        <input name="email" type="email" value={f.email} onInput={set("email")} aria-invalid={bad("email")} />
      </label>
      <label>
        Tags <small>(comma-separated)</small>
        <input name="tags" value={f.tags} onInput={set("tags")} aria-invalid={bad("tags")} />
      </label>
      <label class="wide">
        Bio
        <textarea name="bio" rows={3} maxLength={5000} value={f.bio} onInput={set("bio")} aria-invalid={bad("bio")} />
      </label>
      <ErrorBox error={error} />
      <div class="actions wide">
        <WriteButton type="submit" class="primary" busy={busy}>
          {busy ? "Saving…" : submitLabel}
        </WriteButton>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

export function CreatorsPage() {
  const [q, setQ] = useState("");
  const [shownQ, setShownQ] = useState("");
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => setQ(shownQ.trim()), 250);
    return () => clearTimeout(t);
  }, [shownQ]);
  const paged = usePaged(`/api/creators${query({ q, limit: 25 })}`);
  return (
    <section>
      <header class="page-head">
        <h1>Creators</h1>
        <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New creator
        </button>
      </header>
      {creating && (
        <CreatorForm
          submitLabel="Create creator"
          onCancel={() => setCreating(false)}
          onSave={async (body) => {
            const c = await api("POST", "/api/creators", body);
            go(`#/creators/${c.id}`);
          }}
        />
      )}
      <input type="search" class="search" placeholder="Search by name or handle" aria-label="Search creators"
        value={shownQ} onInput={(e) => setShownQ(e.currentTarget.value)} />
      <Loaded got={paged} isEmpty={(d) => d.items.length === 0}
        empty={q ? `No creator matches “${q}”.` : "No creators yet: create the first one."}>
        {(d) => (
          <ul class="creators">
            {d.items.map((c) => (
              <li key={c.id}>
                <a href={`#/creators/${c.id}`} class="creator-link">
                  <strong>{c.name}</strong> <span class="muted">@{c.handle}</span>
                </a>
                <span class="tags">
                  {c.tags.map((t) => (
                    <span class="tag" key={t}>{t}</span>
                  ))}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Loaded>
      <Pager paged={paged} />
    </section>
  );
}

// Full size on click, in a modal dialog (Escape closes it).
function Viewer({ image, onClose }) {
  const ref = useRef(null);
  useEffect(() => {
    if (image && ref.current && !ref.current.open) ref.current.showModal();
  }, [image]);
  if (!image) return null;
  return (
    <dialog ref={ref} class="viewer" onClose={onClose} aria-label={`image ${image.id}`}>
      <img src={image.url} alt={`image ${image.id}, ${image.width}×${image.height}`} width={image.width} height={image.height} />
      <p>
        #{image.id} · {image.width}×{image.height} · {image.content_type} · {Math.round(image.size_bytes / 1024)} KB ·{" "}
        {image.source} · <Time at={image.created_at} />
      </p>
      <form method="dialog">
        <button class="primary" autofocus>Close</button>
      </form>
    </dialog>
  );
}

export function Gallery({ images, onOpen }) {
  return (
    <ul class="gallery">
      {images.map((im) => (
        <li key={im.id}>
          <button type="button" class="thumb" onClick={() => onOpen(im)} aria-label={`open image ${im.id} (${im.source})`}>
            <img src={im.url} alt="" loading="lazy" width={im.width} height={im.height} data-image={im.id} />
          </button>
          <span class="muted">{im.source}</span>
        </li>
      ))}
    </ul>
  );
}

// Drop files here (or pick them): each is sent as the raw body, with its own progress bar.
function Uploader({ creatorId, onDone }) {
  const [uploads, setUploads] = useState([]);
  const [over, setOver] = useState(false);
  const input = useRef(null);
  const send = (files) => {
    for (const file of files) {
      const key = `${file.name}-${Math.random()}`;
      const update = (patch) => setUploads((us) => us.map((u) => (u.key === key ? { ...u, ...patch } : u)));
      setUploads((us) => [...us, { key, name: file.name, progress: 0, error: null, done: false }]);
      upload(`/api/creators/${creatorId}/images`, file, (p) => update({ progress: p })).then(
        () => {
          update({ progress: 1, done: true });
          onDone();
        },
        (error) => update({ error }),
      );
    }
  };
  return (
    <div
      class={`dropzone${over ? " over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        send(e.dataTransfer.files);
      }}
    >
      <p>
        Drop PNG, JPEG or WebP images here, or{" "}
        <WriteButton class="small" onClick={() => input.current.click()}>
          choose files
        </WriteButton>
      </p>
      <input ref={input} type="file" accept="image/png,image/jpeg,image/webp" multiple hidden aria-label="Upload images"
        onChange={(e) => {
          send(e.currentTarget.files);
          e.currentTarget.value = "";
        }} />
      {uploads.length > 0 && (
        <ul class="uploads">
          {uploads.map((u) => (
            <li key={u.key} class={u.error ? "failed" : u.done ? "done" : ""}>
              <span>{u.name}</span>
              <progress max="1" value={u.progress} aria-label={`upload of ${u.name}`} />
              <span role="status">{u.error ? describe(u.error) : u.done ? "uploaded" : `${Math.round(u.progress * 100)}%`}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function CreatorPage({ id }) {
  const got = useGet(`/api/creators/${id}`);
  const images = usePaged(`/api/creators/${id}/images?limit=24`);
  const jobs = usePaged(`/api/jobs${query({ creator_id: id, limit: 10 })}`, 5000);
  const [editing, setEditing] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  if (got.error && !got.data)
    return (
      <section>
        <h1>Creator {id}</h1>
        <ErrorBox error={got.error} retry={got.reload} />
      </section>
    );
  if (!got.data) return <Loading what="Loading the creator" />;
  const c = got.data;
  const remove = async () => {
    try {
      await api("DELETE", `/api/creators/${id}`);
      go("#/creators");
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <header class="page-head">
        <h1>
          {c.name} <span class="muted">@{c.handle}</span>
        </h1>
        <div class="actions">
          <a class="button primary" href={`#/generate?creator=${id}`}>Generate</a>
          <WriteButton onClick={() => setEditing(!editing)}>Edit</WriteButton>
          {confirm ? (
            <>
              <WriteButton class="danger" onClick={remove}>Delete {c.name} and all images</WriteButton>
              <button type="button" onClick={() => setConfirm(false)}>Keep</button>
            </>
          ) : (
            <WriteButton class="danger" onClick={() => setConfirm(true)}>Delete</WriteButton>
          )}
        </div>
      </header>
      <ErrorBox error={error} />
      {editing ? (
        <CreatorForm
          initial={c}
          submitLabel="Save changes"
          onCancel={() => setEditing(false)}
          onSave={async (body) => {
            await api("PATCH", `/api/creators/${id}`, body);
            setEditing(false);
            got.reload();
          }}
        />
      ) : (
        <dl class="card facts">
          <dt>Email</dt>
          <dd>{c.email || <span class="muted">none</span>}</dd>
          <dt>Tags</dt>
          <dd>{c.tags.length ? c.tags.join(", ") : <span class="muted">none</span>}</dd>
          <dt>Bio</dt>
          <dd class="bio">{c.bio || <span class="muted">none</span>}</dd>
          <dt>Created</dt>
          <dd><Time at={c.created_at} /></dd>
        </dl>
      )}
      <h2>Gallery</h2>
      <Uploader creatorId={id} onDone={images.reload} />
      <Loaded got={images} isEmpty={(d) => d.items.length === 0} empty="No images yet: upload some, or generate them.">
        {(d) => <Gallery images={d.items} onOpen={setOpen} />}
      </Loaded>
      <Pager paged={images} />
      <Viewer image={open} onClose={() => setOpen(null)} />
      <h2>Jobs</h2>
      <Loaded got={jobs} isEmpty={(d) => d.items.length === 0} empty="No jobs for this creator yet.">
        {(d) => <JobsTable jobs={d.items} showCreator={false} />}
      </Loaded>
      <Pager paged={jobs} />
    </section>
  );
}

