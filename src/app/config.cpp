#include "app/config.hpp"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "domain/creator.hpp"
#include "mail/email.hpp"
#include "net/address_policy.hpp"

namespace creatord {

void add_options(CLI::App& app, Config& c) {
  app.option_defaults()->always_capture_default();
  app.add_option("--config", c.config_file, "Config file (key = value lines; keys are these option names)")
      ->group("Service");
  app.add_option("--listen", c.listen, "Address to listen on, HOST:PORT; port 0 picks a free port")->group("Service");
  app.add_option("--public-url", c.public_url,
                 "Base URL users reach the service at, for links in emails (default: http://HOST:PORT from --listen)")
      ->group("Service");
  app.add_option("--data-dir", c.data_dir, "Folder for the SQLite database and image blobs")->group("Service");
  app.add_option("--database-url", c.database_url,
                 "Empty or sqlite://PATH: the embedded SQLite store. postgres://… (any libpq URL): "
                 "PostgreSQL, shared by several instances")
      ->group("Service");
  app.add_option("--database-connections", c.database_connections, "PostgreSQL connections per instance")
      ->group("Service");
  app.add_option("--database-acquire-timeout", c.database_acquire_timeout,
                 "Seconds a request waits for a free PostgreSQL connection before 503")
      ->group("Service");
  app.add_option("--database-statement-timeout", c.database_statement_timeout,
                 "Seconds one PostgreSQL statement may take (a pooler's queue included) before 503 / a retryable "
                 "step failure")
      ->group("Service");
  app.add_option("--database-listen-url", c.database_listen_url,
                 "PostgreSQL URL for LISTEN (direct or session-mode pooler); empty: --database-url. Through a "
                 "transaction-mode pooler without it, other instances' changes are polled for (--job-poll)")
      ->group("Service");
  app.add_option("--threads", c.threads, "I/O threads, one event loop each; 0 = one per core")->group("Service");
  app.add_flag("--demo", c.demo, "Seed demo creators when the store is empty (default off; --demo turns it on)")
      ->default_str(c.demo ? "true" : "false")->group("Service");
  app.add_option("--log-level", c.log_level, "debug, info, warn or error")->group("Service");
  app.add_option("--log-format", c.log_format,
                 "auto (coloured text when stdout is a terminal, else JSON lines), json or text")
      ->check(CLI::IsMember({"auto", "json", "text"}))
      ->group("Service");
  app.add_flag("--access-log", c.access_log, "Log one line per request (default on; --access-log=false turns it off)")->group("Service");
  app.add_option("--access-log-buffer", c.access_log_buffer,
                 "Bytes of access lines an I/O thread may hold while the log output is behind; beyond, lines are "
                 "dropped and counted (creatord_log_dropped_lines_total)")
      ->check(CLI::NonNegativeNumber)->group("Service");

  app.add_flag("--metrics", c.metrics, "Record and serve Prometheus metrics at /metrics (default on; --metrics=false turns it off)")
      ->default_str(c.metrics ? "true" : "false")
      ->group("Service");
  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve /metrics on this HOST:PORT of its own instead of the main listener (empty: the main listener)")
      ->group("Service");
  app.add_flag("--metrics-public", c.metrics_public,
               "On the main listener, serve /metrics without a token even when tokens are configured (default off)")
      ->default_str(c.metrics_public ? "true" : "false")
      ->group("Service");

  app.add_flag("--ui", c.ui, "Serve the dashboard at /ui/, with / redirecting there (default on; --ui=false turns it off)")
      ->group("Service");

  app.add_option("--api-tokens", c.api_tokens,
                 "Shared bearer tokens with every scope, comma-separated. With no credentials at all (tokens, "
                 "keys, JWT settings), only loopback addresses may be listened on")
      ->delimiter(',')
      ->group("Security");
  app.add_option("--api-tokens-file", c.api_tokens_file, "File with one bearer token per line")->group("Security");
  app.add_option("--cors-origins", c.cors_origins, "Allowed CORS origins, comma-separated, or *")
      ->delimiter(',')
      ->group("Security");
  app.add_flag("--public-read", c.public_read,
               "When credentials are required, let anonymous callers read public fields (default on; "
               "--public-read=false: every read needs a credential)")
      ->group("Security");
  app.add_option("--api-key-refresh", c.api_key_refresh,
                 "Seconds between reloads of the API keys from the store (new and revoked keys take effect within it)")
      ->check(CLI::PositiveNumber)->group("Security");
  app.add_option("--jwt-secret", c.jwt_secret, "HS256 secret for JWT bearer tokens (Supabase: the legacy JWT secret)")
      ->group("Security");
  app.add_option("--jwks-url", c.jwks_url,
                 "JWKS URL with the public keys of RS256/ES256 JWT bearer tokens (Supabase: "
                 "https://<project>.supabase.co/auth/v1/.well-known/jwks.json)")
      ->group("Security");
  app.add_option("--jwt-issuer", c.jwt_issuer, "The `iss` JWTs must carry (Supabase: https://<project>.supabase.co/auth/v1)")
      ->group("Security");
  app.add_option("--jwt-audience", c.jwt_audience, "Accepted JWT `aud` values, comma-separated (Supabase: authenticated)")
      ->delimiter(',')
      ->group("Security");
  app.add_option("--jwt-leeway", c.jwt_leeway, "Seconds of clock skew allowed on JWT exp and nbf")
      ->check(CLI::NonNegativeNumber)->group("Security");
  app.add_option("--jwks-refresh", c.jwks_refresh, "Seconds between JWKS fetches")->check(CLI::PositiveNumber)->group("Security");
  app.add_option("--jwks-min-refresh", c.jwks_min_refresh,
                 "Least seconds between JWKS fetches caused by a token naming an unknown key")
      ->check(CLI::NonNegativeNumber)->group("Security");

  app.add_option("--max-connections", c.max_connections, "Open connections before new ones get 503")->group("Limits");
  app.add_option("--max-connections-per-ip", c.max_connections_per_ip,
                 "Open connections from one client address before new ones get 503; 0 = no limit "
                 "(behind a reverse proxy every client has the proxy's address)")
      ->group("Limits");
  app.add_option("--max-header-bytes", c.max_header_bytes, "Request header size limit (431 beyond)")->group("Limits");
  app.add_option("--max-json-bytes", c.max_json_bytes, "JSON request body limit (413 beyond)")->group("Limits");
  app.add_option("--max-upload-bytes", c.max_upload_bytes, "Image upload body limit (413 beyond)")->group("Limits");
  app.add_option("--max-body-memory", c.max_body_memory,
                 "Request body bytes held in memory at once, all connections together (503 beyond)")
      ->group("Limits");
  app.add_option("--header-timeout", c.header_timeout, "Seconds from a request's first byte to its last header (408 beyond), and a new connection's wait for its first byte")->group("Limits");
  app.add_option("--body-timeout", c.body_timeout, "Seconds to receive a request body (408 beyond)")->group("Limits");
  app.add_option("--idle-timeout", c.idle_timeout, "Seconds a keep-alive connection may wait between requests")->group("Limits");
  app.add_option("--write-timeout", c.write_timeout, "Seconds a response may go without the client taking a byte (closed beyond)")->group("Limits");
  app.add_option("--min-send-rate", c.min_send_rate,
                 "Bytes per second a client must take a response at, on average, once --write-timeout has passed (0: no minimum)")
      ->check(CLI::NonNegativeNumber)
      ->group("Limits");
  app.add_option("--shutdown-grace", c.shutdown_grace, "Seconds in-flight requests get after SIGTERM")->group("Limits");
  app.add_option("--page-limit-default", c.page_limit_default, "Items per page when limit is not given")->group("Limits");
  app.add_option("--page-limit-max", c.page_limit_max, "Largest limit a list accepts")->group("Limits");

  app.add_option("--list-cache-entries", c.list_cache_entries,
                 "Cached answers, all I/O threads together: creator lists (writes invalidate them) and image bytes; 0 disables")
      ->group("Store");
  app.add_option("--max-image-pixels", c.max_image_pixels,
                 "Largest image accepted, in pixels (width x height); refused before it is decoded")
      ->group("Limits");
  app.add_option("--max-image-decode-bytes", c.max_image_decode_bytes,
                 "Memory one image's decoder may use while an upload is checked")
      ->group("Limits");
  app.add_option("--response-cache-bytes", c.response_cache_bytes,
                 "Bytes that cached answers may hold, all caches and threads together; 0 disables")
      ->group("Store");
  app.add_option("--queues", c.queues, "Job queues and how many jobs of each run at once, NAME=N,...")->group("Jobs");
  app.add_flag("--run-jobs", c.run_jobs,
               "Run jobs here (default on); --run-jobs=false makes an API-only instance (PostgreSQL)")
      ->default_str(c.run_jobs ? "true" : "false")
      ->group("Jobs");
  app.add_option("--render-threads", c.render_threads, "Threads for CPU-heavy steps (lower priority); 0 = one per core")->group("Jobs");
  app.add_flag("--render-idle", c.render_idle,
               "Render threads use only idle CPU (SCHED_IDLE): the API always comes first, and jobs "
               "wait while API traffic saturates every core (default on; --render-idle=false shares the CPU)")
      ->default_str(c.render_idle ? "true" : "false")->group("Jobs");
  app.add_option("--render-nice", c.render_nice, "Nice value of render threads (0..19)")
      ->check(CLI::Range(0, 19))->group("Jobs");
  app.add_option("--pipelines", c.pipelines_file,
                 "TOML file of your own pipelines ([[pipeline]] with exec and http steps); checked at start")
      ->group("Jobs");
  app.add_option("--http-threads", c.http_threads, "Threads for the outgoing calls of http steps")->group("Jobs");
  app.add_option("--step-connect-timeout", c.step_connect_timeout, "Seconds a step's outgoing call may take to connect")
      ->group("Jobs");
  app.add_option("--step-download-timeout", c.step_download_timeout,
                 "Longest a step's image download may take in all, in seconds (a generous cap)")
      ->group("Jobs");
  app.add_option("--step-download-stall-timeout", c.step_download_stall_timeout,
                 "Seconds an image download may go on below --step-download-min-rate before it is abandoned")
      ->group("Jobs");
  app.add_option("--step-allow-internal", c.step_allow_internal,
                 "Internal addresses (loopback, private, link-local...) every step may reach, comma-separated: "
                 "addresses, networks (10.0.0.0/8), host names, or * (development); none by default")
      ->delimiter(',')
      ->group("Jobs");
  app.add_option("--step-download-min-rate", c.step_download_min_rate,
                 "Bytes per second an image download must keep up, averaged over --step-download-stall-timeout")
      ->group("Jobs");
  app.add_option("--job-lease", c.job_lease, "Seconds a running job's lease lasts; a dead worker's jobs return after it")->group("Jobs");
  app.add_option("--job-heartbeat", c.job_heartbeat, "Seconds between lease renewals")->group("Jobs");
  app.add_option("--job-poll", c.job_poll, "Seconds between queue checks when nothing wakes the workers")->group("Jobs");
  app.add_option("--job-retry-base", c.job_retry_base, "Seconds before the first retry; doubles each attempt, with jitter")->group("Jobs");
  app.add_option("--job-retry-cap", c.job_retry_cap, "Longest wait between retries, in seconds")->group("Jobs");
  app.add_option("--job-retention", c.job_retention, "Seconds finished jobs are kept before they are pruned")->group("Jobs");
  app.add_option("--idempotency-ttl", c.idempotency_ttl,
                 "Seconds an Idempotency-Key keeps naming the job or email it created")
      ->group("Jobs")
      ->check(CLI::Range(1.0, 30.0 * 24 * 3600));
  app.add_option("--max-wait", c.max_wait, "Largest ?wait= a generate request may ask for, in seconds")->group("Jobs");
  app.add_option("--sse-heartbeat", c.sse_heartbeat, "Seconds between heartbeats on an idle event stream")->group("Jobs");
  app.add_option("--max-job-timeout", c.max_job_timeout, "Largest timeout_seconds a job may ask for")
      ->check(CLI::Range(1, 7 * 24 * 3600))->group("Quotas");
  app.add_option("--max-job-attempts", c.max_job_attempts, "Largest max_attempts a job may ask for")
      ->check(CLI::Range(1, 100))->group("Quotas");
  app.add_option("--max-unfinished-jobs-per-token", c.max_unfinished_jobs_per_token,
                 "Queued, scheduled, running and retrying jobs one caller (token, key or user) may have (429 beyond; 0: no limit)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--max-unfinished-jobs-per-creator", c.max_unfinished_jobs_per_creator,
                 "Unfinished jobs one creator may have (429 beyond; 0: no limit)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--enqueue-rate", c.enqueue_rate, "Jobs per minute one caller (token, key or user) may enqueue (429 beyond; 0: no limit)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--enqueue-burst", c.enqueue_burst, "Jobs a caller may enqueue at once before the rate applies")
      ->check(CLI::PositiveNumber)->group("Quotas");
  app.add_option("--max-unfinished-jobs-per-user", c.max_unfinished_jobs_per_user,
                 "Unfinished jobs one signed-in user (JWT) may have, within the per-caller cap (429 beyond; 0: no own limit)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--user-enqueue-rate", c.user_enqueue_rate,
                 "Jobs per minute one signed-in user may enqueue, within the per-caller rate (429 beyond; 0: no own limit)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--user-enqueue-burst", c.user_enqueue_burst, "Jobs a signed-in user may enqueue at once before their rate applies")
      ->check(CLI::PositiveNumber)->group("Quotas");
  app.add_option("--max-generate-pixels", c.max_generate_pixels,
                 "Pixels one generate job may render: variants x (avatar_size^2 + banner_width x banner_height) (0: no cap)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--max-generate-shapes", c.max_generate_shapes,
                 "Shapes one generate job may draw: variants x detail (0: no cap)")
      ->check(CLI::NonNegativeNumber)->group("Quotas");
  app.add_option("--smtp-url", c.smtp_url,
                 "SMTP server: smtp://host:port (STARTTLS when offered) or smtps://host:port (TLS); "
                 "empty writes .eml files into DATA_DIR/outbox")->group("Email");
  app.add_option("--smtp-user", c.smtp_user, "SMTP AUTH user")->group("Email");
  app.add_option("--smtp-password", c.smtp_password, "SMTP AUTH password (prefer CREATORD_SMTP_PASSWORD)")->group("Email");
  app.add_option("--smtp-starttls", c.smtp_starttls, "auto (when offered), required, never")
      ->check(CLI::IsMember({"auto", "required", "never"}))->group("Email");
  app.add_option("--smtp-ca-file", c.smtp_ca_file, "Extra CA certificates (PEM) to trust for the SMTP server")->group("Email");
  app.add_flag("--smtp-verify-tls", c.smtp_verify_tls, "Verify the SMTP server's certificate (default on; --smtp-verify-tls=false: do not)")
      ->default_str(c.smtp_verify_tls ? "true" : "false")->group("Email");
  app.add_option("--smtp-connect-timeout", c.smtp_connect_timeout, "Seconds to connect to the SMTP server")->group("Email");
  app.add_option("--smtp-timeout", c.smtp_timeout, "Seconds one delivery may take")->group("Email");
  app.add_option("--mail-from", c.mail_from, "From address of every email")->group("Email");
  app.add_option("--mail-max-recipients", c.mail_max_recipients, "Recipients per email (to+cc+bcc)")->group("Email");
  app.add_option("--mail-max-subject", c.mail_max_subject, "Subject length in characters")->group("Email");
  app.add_option("--mail-max-body-bytes", c.mail_max_body_bytes, "Size of the text and of the html body")->group("Email");
  app.add_option("--mail-rate", c.mail_rate, "Emails per minute per API token (429 beyond)")->group("Email");
  app.add_option("--mail-burst", c.mail_burst, "Emails a token may send at once before the rate applies")->group("Email");
  app.add_option("--mail-max-attempts", c.mail_max_attempts, "Delivery attempts before an email fails")->group("Email");
  app.add_option("--mail-threads", c.mail_threads, "Threads that talk to the SMTP server")->group("Email");
  app.add_option("--store-readers", c.store_readers, "SQLite read connections; 0 = max(2, cores)")->group("Store");
  app.add_option("--store-queue-limit", c.store_queue_limit, "Queued store operations before 503")->group("Store");
  app.add_option("--file-threads", c.file_threads, "Threads for blob file I/O")->group("Store");
  app.add_option("--sqlite-synchronous", c.sqlite_synchronous,
                 "FULL (a commit survives power loss) or NORMAL (survives a process crash)")
      ->check(CLI::IsMember({"FULL", "NORMAL"}))
      ->group("Store");
  app.add_option("--blob-sweep-interval", c.blob_sweep_interval, "Seconds between sweeps for unreferenced image files")->group("Store");
  app.add_option("--blob-sweep-grace", c.blob_sweep_grace, "Seconds an unreferenced image file is kept")->group("Store");
}

namespace {

std::string env_name(std::string_view long_name) {
  std::string out = "CREATORD_";
  for (char c : long_name) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A value in the file: "string", 'string', bare word/number/bool, or ["a", "b"] (joined by ',').
std::optional<std::string> parse_value(std::string_view v) {
  v = trim(v);
  if (v.empty()) return std::nullopt;
  if (v.front() == '"' || v.front() == '\'') {
    if (v.size() < 2 || v.back() != v.front()) return std::nullopt;
    return std::string(v.substr(1, v.size() - 2));
  }
  if (v.front() == '[') {
    if (v.back() != ']') return std::nullopt;
    std::string joined;
    std::string_view inner = v.substr(1, v.size() - 2);
    while (!trim(inner).empty()) {
      size_t comma = inner.find(',');
      auto item = parse_value(inner.substr(0, comma));
      if (!item) return std::nullopt;
      if (!joined.empty()) joined.push_back(',');
      joined += *item;
      if (comma == std::string_view::npos) break;
      inner = inner.substr(comma + 1);
    }
    return joined;
  }
  size_t hash = v.find('#');
  return std::string(trim(v.substr(0, hash)));
}

bool user_gave(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

}  // namespace

namespace {

// A value from the config file and where it was written ("file:line").
struct FileValue {
  std::string value;
  std::string where;
};

// Parses one value alone, as the flag would, so a mistake is reported with its line instead of
// later by the whole command line.
Status check_file_value(const std::string& key, const FileValue& v) {
  CLI::App scratch;
  Config ignored;
  add_options(scratch, ignored);
  std::vector<std::string> argv{"creatord", "--" + key + "=" + v.value};
  std::vector<const char*> cargs;
  for (const auto& a : argv) cargs.push_back(a.c_str());
  try {
    scratch.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return Error::make(ErrorCode::bad_request,
                       fmt::format("{}: bad value '{}' for '{}': {}", v.where, v.value, key, e.what()));
  }
  return ok_status();
}

Result<std::map<std::string, FileValue>> read_config_file(const std::string& file, const CLI::App& app) {
  std::map<std::string, FileValue> out;
  std::ifstream in(file);
  if (!in) return Error::make(ErrorCode::bad_request, "cannot read config file " + file);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = trim(line);
    if (l.empty() || l.front() == '#') continue;
    size_t eq = l.find('=');
    auto where = fmt::format("{}:{}", file, lineno);
    if (eq == std::string_view::npos) return Error::make(ErrorCode::bad_request, where + ": expected key = value");
    std::string key(trim(l.substr(0, eq)));
    std::replace(key.begin(), key.end(), '_', '-');
    const CLI::Option* opt = nullptr;
    try {
      opt = app.get_option("--" + key);
    } catch (const CLI::Error&) {
    }
    if (!opt || key == "config" || key == "version")
      return Error::make(ErrorCode::bad_request, fmt::format("{}: unknown setting '{}'", where, key));
    auto value = parse_value(l.substr(eq + 1));
    if (!value) return Error::make(ErrorCode::bad_request, fmt::format("{}: bad value for '{}'", where, key));
    FileValue fv{std::move(*value), where};
    if (auto ok = check_file_value(key, fv); !ok) return ok.take_error();
    out[key] = std::move(fv);
  }
  return out;
}

bool is_bool_word(std::string_view s) {
  for (std::string_view w : {"true", "false", "on", "off", "yes", "no", "1", "0"})
    if (s == w) return true;
  return false;
}

// "--render-idle true" means "--render-idle=true", as in most CLIs: CLI11 flags take their value
// only after '=', and would read "true" as a stray argument.
std::vector<std::string> join_flag_values(const std::vector<std::string>& args, const CLI::App& app) {
  std::vector<std::string> out;
  out.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    out.push_back(a);
    if (a == "--") {
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) != 0 || a.find('=') != std::string::npos || i + 1 >= args.size()) continue;
    const CLI::Option* opt = nullptr;
    try {
      opt = app.get_option(a);
    } catch (const CLI::Error&) {
    }
    if (opt && opt->get_expected_max() == 0 && is_bool_word(args[i + 1])) out.back() += "=" + args[++i];
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> merge_sources(const std::vector<std::string>& given, const CLI::App& app,
                                               const char* (*env)(const char*)) {
  std::vector<std::string> args = join_flag_values(given, app);
  // Which config file: the flag, else the environment.
  std::string file;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) file = args[i + 1];
    else if (args[i].rfind("--config=", 0) == 0) file = args[i].substr(9);
  }
  if (file.empty()) {
    if (const char* e = env("CREATORD_CONFIG")) file = e;
  }
  std::map<std::string, FileValue> from_file;
  if (!file.empty()) {
    auto read = read_config_file(file, app);
    if (!read) return read.take_error();
    from_file = std::move(read.value());
  }

  std::vector<std::string> injected;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string& name = opt->get_lnames().front();
    if (name == "help" || name == "config" || name == "version") continue;
    std::string flag = "--" + name;
    if (user_gave(args, flag)) continue;
    if (const char* e = env(env_name(name).c_str())) {
      injected.push_back(flag + "=" + e);
    } else if (auto it = from_file.find(name); it != from_file.end()) {
      injected.push_back(flag + "=" + it->second.value);
    }
  }
  // program name, then injected values, then the user's arguments (subcommand included).
  std::vector<std::string> out;
  out.reserve(args.size() + injected.size());
  if (!args.empty()) out.push_back(args.front());
  out.insert(out.end(), injected.begin(), injected.end());
  if (args.size() > 1) out.insert(out.end(), args.begin() + 1, args.end());
  return out;
}

namespace {

bool bare_value(const std::string& v) {
  if (v == "true" || v == "false") return true;
  if (v.empty()) return false;
  char* end = nullptr;
  std::strtod(v.c_str(), &end);
  return end == v.c_str() + v.size();
}

// One value as the file reads it back: numbers and booleans bare, text quoted, lists as [...].
std::string file_value(const std::vector<std::string>& values, bool list) {
  auto one = [](const std::string& v) { return bare_value(v) ? v : "\"" + v + "\""; };
  if (!list) return values.empty() ? "\"\"" : one(values.back());
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + one(values[i]);
  return out + "]";
}

// CLI11 shows a captured list default as "[a,b]" (or "[]") and a flag's as "true"/"false".
std::vector<std::string> default_values(const CLI::Option& opt) {
  std::string d = opt.get_default_str();
  if (d.size() >= 2 && d.front() == '[' && d.back() == ']') d = d.substr(1, d.size() - 2);
  if (d.empty()) return {};
  if (opt.get_expected_max() <= 1 && opt.get_delimiter() == '\0') return {d};
  std::vector<std::string> out;
  std::stringstream in(d);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

std::string config_template(const CLI::App& app) {
  std::string out =
      "# creatord configuration: `name = value` lines, read by `creatord --config FILE` (or\n"
      "# CREATORD_CONFIG). Every option is listed with its help, commented out at its default;\n"
      "# flags and CREATORD_<NAME> environment variables win over this file. SIGHUP reloads the\n"
      "# API tokens and the log level; other changes take effect at the next restart.\n";
  std::string group;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string& name = opt->get_lnames().front();
    if (name == "help" || name == "config" || name == "version") continue;
    if (opt->get_group() != group) {
      group = opt->get_group();
      out += "\n# --- " + group + " ---\n";
    }
    out += "\n# " + opt->get_description() + "\n";
    bool list = opt->get_delimiter() != '\0';
    if (opt->count() > 0) out += name + " = " + file_value(opt->results(), list) + "\n";
    else out += "# " + name + " = " + file_value(default_values(*opt), list) + "\n";
  }
  return out;
}

Result<Config> load_config(const std::vector<std::string>& args, const char* (*env)(const char*)) {
  Config c;
  CLI::App app;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_options(app, c);
  app.add_subcommand("serve")->fallthrough();
  app.allow_extras();
  auto merged = merge_sources(args, app, env);
  if (!merged) return merged.take_error();
  std::vector<const char*> cargs;
  for (const auto& a : merged.value()) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return Error::make(ErrorCode::bad_request, e.what());
  }
  if (auto s = finalize(c); !s) return s.take_error();
  return c;
}

namespace {

// A base URL: http:// or https://, a host, no query, fragment or white space.
Status check_public_url(const std::string& url) {
  if (url.empty()) return ok_status();
  bool scheme = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
  size_t host_at = url.find("://") + 3;
  if (!scheme || url.size() <= host_at || url[host_at] == '/' ||
      url.find_first_of("?# \t\r\n") != std::string::npos)
    return Error::make(ErrorCode::bad_request,
                       "public-url must be a base URL like https://creatord.example.com, got '" + url + "'");
  return ok_status();
}

}  // namespace

Status finalize(Config& c) {
  if (!c.api_tokens_file.empty()) {
    std::ifstream in(c.api_tokens_file);
    if (!in) return Error::make(ErrorCode::bad_request, "cannot read api tokens file " + c.api_tokens_file);
    std::string line;
    while (std::getline(in, line)) {
      auto t = trim(line);
      if (!t.empty() && t.front() != '#') c.api_tokens.emplace_back(t);
    }
  }
  std::erase_if(c.api_tokens, [](const std::string& t) { return trim(t).empty(); });
  for (const auto& t : c.api_tokens) {
    if (t.size() < 16) return Error::make(ErrorCode::bad_request, "api tokens must be at least 16 characters");
    for (unsigned char ch : t)
      if (ch <= 0x20 || ch >= 0x7f) return Error::make(ErrorCode::bad_request, "api tokens must be printable ASCII without spaces");
  }
  if (!c.jwt_secret.empty() && c.jwt_secret.size() < 32)
    return Error::make(ErrorCode::bad_request, "jwt-secret must be at least 32 characters");
  if (!c.jwks_url.empty() && c.jwks_url.rfind("https://", 0) != 0 && c.jwks_url.rfind("http://", 0) != 0)
    return Error::make(ErrorCode::bad_request, "jwks-url must be an http(s) URL");
  if (c.page_limit_default < 1 || c.page_limit_max < c.page_limit_default)
    return Error::make(ErrorCode::bad_request, "need 1 <= page-limit-default <= page-limit-max");
  for (double t : {c.header_timeout, c.body_timeout, c.idle_timeout, c.write_timeout})
    if (t <= 0) return Error::make(ErrorCode::bad_request, "timeouts must be positive");
  if (c.shutdown_grace < 0) return Error::make(ErrorCode::bad_request, "shutdown-grace must not be negative");
  if (c.max_connections == 0 || c.max_header_bytes < 512)
    return Error::make(ErrorCode::bad_request, "max-connections must be positive and max-header-bytes at least 512");
  if (c.max_body_memory < std::max(c.max_json_bytes, c.max_upload_bytes))
    return Error::make(ErrorCode::bad_request, "max-body-memory must be at least max-json-bytes and max-upload-bytes");
  if (auto l = parse_listen(c.listen); !l) return l.take_error();
  if (auto u = check_public_url(c.public_url); !u) return u;
  if (!c.metrics_listen.empty())
    if (auto l = parse_listen(c.metrics_listen); !l) return Error::make(ErrorCode::bad_request, "metrics-listen: " + l.error().message);
  if (auto q = parse_queues(c.queues); !q) return q.take_error();
  for (double t : {c.job_lease, c.job_heartbeat, c.job_poll, c.sse_heartbeat})
    if (t <= 0) return Error::make(ErrorCode::bad_request, "job timings must be positive");
  if (c.job_heartbeat >= c.job_lease)
    return Error::make(ErrorCode::bad_request, "job-heartbeat must be shorter than job-lease");
  for (double t : {c.step_connect_timeout, c.step_download_timeout, c.step_download_stall_timeout})
    if (t <= 0) return Error::make(ErrorCode::bad_request, "step timeouts must be positive");
  if (auto a = AddressPolicy::parse(c.step_allow_internal); !a)
    return Error::make(ErrorCode::bad_request, "step-allow-internal: " + a.error().message);
  if (c.step_download_min_rate < 1) return Error::make(ErrorCode::bad_request, "step-download-min-rate must be positive");
  if (c.max_wait < 0 || c.max_wait > 3600) return Error::make(ErrorCode::bad_request, "max-wait must be 0..3600");
  if (!parse_mailbox(c.mail_from, "mail-from"))
    return Error::make(ErrorCode::bad_request, "mail-from must be an address, like 'creatord <noreply@example.com>'");
  if (c.mail_max_attempts < 1 || c.mail_rate <= 0 || c.mail_burst < 1)
    return Error::make(ErrorCode::bad_request, "mail-max-attempts, mail-rate and mail-burst must be positive");
  return ok_status();
}

Result<std::map<std::string, int>> parse_queues(const std::string& spec) {
  std::map<std::string, int> out;
  std::string_view rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    int n = 0;
    std::string name(trim(item.substr(0, eq)));
    std::string_view num = eq == std::string_view::npos ? std::string_view{} : trim(item.substr(eq + 1));
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (name.empty() || num.empty() || ec != std::errc() || p != num.data() + num.size() || n < 1 || n > 10000)
      return Error::make(ErrorCode::bad_request,
                         "queues must look like generate=2,default=8,email=4 (1..10000 each), got '" + spec + "'");
    out[name] = n;
  }
  for (const char* required : {"generate", "default", "email"})
    if (!out.count(required)) return Error::make(ErrorCode::bad_request, std::string("queues must include ") + required);
  return out;
}

std::string public_base_url(const Config& cfg, const std::string& host, uint16_t port) {
  std::string url = cfg.public_url;
  if (url.empty()) {
    std::string name = host;
    char buf[256] = {};
    if ((host == "0.0.0.0" || host == "::") && ::gethostname(buf, sizeof buf - 1) == 0 && buf[0]) name = buf;
    if (name.find(':') != std::string::npos) name = "[" + name + "]";
    url = fmt::format("http://{}:{}", name, port);
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& listen) {
  auto bad = [&] {
    return Error::make(ErrorCode::bad_request, "listen must be HOST:PORT (e.g. 127.0.0.1:8000 or [::1]:8000), got '" + listen + "'");
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  std::string host = listen.substr(0, colon);
  std::string port_s = listen.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
  if (port_s.empty() || ec != std::errc() || p != port_s.data() + port_s.size() || port > 65535) return bad();
  return std::pair<std::string, uint16_t>{host, static_cast<uint16_t>(port)};
}

}  // namespace creatord
