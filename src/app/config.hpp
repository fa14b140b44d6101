// Every setting creatord has. Each comes from a flag (--listen), the environment
// (CREATORD_LISTEN) or a config file (listen = "..."), in that order of precedence, else its
// default. `creatord --help` lists them all.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace CLI {
class App;
}

namespace creatord {

struct Config {
  // Service
  std::string listen = "127.0.0.1:8000";
  std::string public_url;  // how users reach the service (links in emails); empty: from listen
  std::string data_dir = "./data";
  std::string database_url;  // empty or sqlite://PATH: SQLite; postgres://...: PostgreSQL
  size_t database_connections = 10;
  double database_acquire_timeout = 5;
  std::string database_listen_url;  // empty: database_url
  double database_statement_timeout = 30;
  size_t threads = 0;  // 0: one per core
  bool demo = false;
  std::string log_level = "info";
  std::string log_format = "auto";  // auto: text on a terminal, JSON lines otherwise
  bool access_log = true;
  size_t access_log_buffer = size_t{1} << 20;
  // Security
  std::vector<std::string> api_tokens;
  std::string api_tokens_file;
  std::vector<std::string> cors_origins;
  bool public_read = true;         // anonymous reads of public fields when credentials are required
  double api_key_refresh = 1;      // seconds between reloads of the API keys from the store
  std::string jwt_secret;          // HS256 secret (Supabase's legacy JWT secret); empty: no HS256
  std::string jwks_url;            // RS256/ES256 public keys; empty: none
  std::string jwt_issuer;          // required `iss`; empty: not checked
  std::vector<std::string> jwt_audience;  // accepted `aud` values; empty: not checked
  double jwt_leeway = 30;          // seconds of clock skew on exp/nbf
  double jwks_refresh = 600;       // seconds between JWKS fetches
  double jwks_min_refresh = 30;    // seconds between fetches for an unknown key id
  // HTTP limits (timeouts in seconds)
  size_t max_connections = 10000;
  size_t max_connections_per_ip = 64;  // 0: no limit
  size_t max_header_bytes = 16 * 1024;
  size_t max_json_bytes = 1 << 20;
  size_t max_upload_bytes = 25u << 20;
  size_t max_body_memory = 256u << 20;  // request bodies in memory at once, all connections
  double header_timeout = 10;
  double body_timeout = 120;
  double idle_timeout = 60;
  double write_timeout = 30;
  double min_send_rate = 1024;  // bytes per second, a response's average once write_timeout passed
  double shutdown_grace = 10;
  int page_limit_default = 50;
  int page_limit_max = 200;
  size_t list_cache_entries = 4096;  // within --response-cache-bytes; 256 kept a read-only mix at half (bench/mix_bench.sh)
  size_t response_cache_bytes = 64u << 20;
  uint64_t max_image_pixels = 40'000'000;
  size_t max_image_decode_bytes = 256u << 20;
  // Store
  size_t store_readers = 0;  // 0: max(2, cores)
  size_t store_queue_limit = 10000;
  size_t file_threads = 4;
  std::string sqlite_synchronous = "FULL";
  double blob_sweep_interval = 3600;
  double blob_sweep_grace = 3600;

  // Jobs (durations in seconds)
  std::string queues = "generate=2,default=8,email=4";
  bool run_jobs = true;
  size_t render_threads = 0;  // 0: one per core
  bool render_idle = true;
  int render_nice = 10;
  double job_lease = 30;
  double job_heartbeat = 10;
  double job_poll = 1;
  double job_retry_base = 1;
  double job_retry_cap = 300;
  double job_retention = 7 * 24 * 3600;
  double idempotency_ttl = 24 * 3600;  // how long an Idempotency-Key names its job or email
  int max_wait = 60;
  double sse_heartbeat = 15;
  // Quotas: what one caller may ask of the job engine (0: no limit, in the counts and rates)
  int max_job_timeout = 3600;  // seconds: the largest timeout_seconds
  int max_job_attempts = 10;   // the largest max_attempts
  int64_t max_unfinished_jobs_per_token = 100;
  int64_t max_unfinished_jobs_per_creator = 20;
  double enqueue_rate = 60;  // jobs per minute per principal (token, key or user)
  double enqueue_burst = 20;
  int64_t max_unfinished_jobs_per_user = 10;  // signed-in users (JWT), within the per-principal cap
  double user_enqueue_rate = 10;              // jobs per minute per signed-in user
  double user_enqueue_burst = 5;
  int64_t max_generate_pixels = 50'000'000;
  int64_t max_generate_shapes = 100'000;

  std::string pipelines_file;  // TOML with [[pipeline]] tables
  size_t http_threads = 8;
  // Steps' outgoing calls: connecting, and image downloads (a minimum rate, not a fixed time)
  double step_connect_timeout = 10;
  double step_download_timeout = 900;
  double step_download_stall_timeout = 30;
  size_t step_download_min_rate = 1024;  // bytes per second over the stall timeout
  std::vector<std::string> step_allow_internal;  // internal addresses every step may reach (dev)

  // Email
  std::string smtp_url;  // empty: .eml files in data/outbox
  std::string smtp_user;
  std::string smtp_password;
  std::string smtp_starttls = "auto";
  std::string smtp_ca_file;
  bool smtp_verify_tls = true;
  double smtp_connect_timeout = 10;
  double smtp_timeout = 60;
  std::string mail_from = "creatord <noreply@creatord.localhost>";
  size_t mail_max_recipients = 50;
  size_t mail_max_subject = 300;
  size_t mail_max_body_bytes = 1 << 20;
  double mail_rate = 60;   // per minute per token
  double mail_burst = 20;
  int mail_max_attempts = 10;
  size_t mail_threads = 4;

  // Observability
  bool metrics = true;          // record and serve /metrics
  std::string metrics_listen;   // HOST:PORT of a listener of its own; empty: the main listener
  bool metrics_public = false;  // on the main listener, no token needed even when tokens are configured

  // The dashboard at /ui/ (/ redirects there), compiled into the binary
  bool ui = true;

  std::string config_file;
};

// "generate=2,default=8" -> {{"generate", 2}, {"default", 8}}
Result<std::map<std::string, int>> parse_queues(const std::string& spec);

// Registers every option on app (bound to cfg's fields).
void add_options(CLI::App& app, Config& cfg);

// Inserts values from the config file and the environment into the argument list, so the
// parser sees them with the right precedence: flags > environment > file. `env` looks up a
// variable (nullptr when unset). Fails with a message naming the file and line on a bad file.
Result<std::vector<std::string>> merge_sources(const std::vector<std::string>& args, const CLI::App& app,
                                               const char* (*env)(const char*));

// The whole serving configuration from a command line (flags, environment, config file), checked
// by finalize: what SIGHUP re-reads. Subcommands other than `serve` are not expected in args.
Result<Config> load_config(const std::vector<std::string>& args, const char* (*env)(const char*));

// A config file for app's options: each one's help as a comment, then `# name = default`, or
// `name = value` uncommented when it was given (flag, environment or file). The packaged
// /etc/creatord/creatord.conf is this, so it names every option there is.
std::string config_template(const CLI::App& app);

// Reads api_tokens_file (one token per line, # comments) into api_tokens; checks values.
Status finalize(Config& cfg);

// "host:port" or "[v6]:port".
Result<std::pair<std::string, uint16_t>> parse_listen(const std::string& listen);

// The base URL users reach the service at, without a trailing slash: --public-url, else
// http://HOST:PORT of the address listened on (port: the one bound; every address, 0.0.0.0 or
// ::, is named by this machine's host name).
std::string public_base_url(const Config& cfg, const std::string& host, uint16_t port);

}  // namespace creatord
