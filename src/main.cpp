// creatord: a backend for creator content generation. See README.md.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/app.hpp"
#include "app/backup.hpp"
#include "app/import.hpp"
#include "app/config.hpp"

// No exception escapes: whatever start-up throws is a message and exit code 2, never an abort.
int main(int argc, char** argv) try {
  creatord::Config cfg;
  CLI::App cli{"creatord: creators, images and generation jobs over a JSON HTTP API.\n"
               "Every option can also be set as CREATORD_<NAME> in the environment (e.g. "
               "CREATORD_LISTEN) or as `name = value` in the --config file; flags win over the "
               "environment, which wins over the file."};
  cli.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  creatord::add_options(cli, cfg);
  bool print_version = false;
  cli.add_flag("--version", print_version, "Print the version and exit (as `creatord version`)");
  auto* serve = cli.add_subcommand("serve", "Run the HTTP service (the default)")->fallthrough();
  auto* migrate = cli.add_subcommand("migrate", "Apply database migrations and exit")->fallthrough();
  cli.add_subcommand("version", "Print the version and exit")->fallthrough();
  creatord::JobsCommand jobs_cmd;
  auto* jobs = cli.add_subcommand("jobs", "Inspect and control jobs in the store (list, show, watch, cancel, retry)")->fallthrough();
  jobs->require_subcommand(1);
  auto* jobs_list = jobs->add_subcommand("list", "List jobs, newest first")->fallthrough();
  jobs_list->add_option("--state", jobs_cmd.state, "Only jobs in this state");
  jobs_list->add_option("--limit", jobs_cmd.limit, "How many")->check(CLI::Range(1, 1000));
  jobs_list->add_flag("--json", jobs_cmd.json, "Print {\"items\":[...]} on one line, for scripts");
  for (const char* action : {"show", "cancel", "retry"}) {
    auto* sub = jobs->add_subcommand(action, std::string(action) + " one job")->fallthrough();
    sub->add_option("id", jobs_cmd.id, "Job id")->required();
  }
  jobs->add_subcommand("watch", "Follow a job live: a progress bar per step, until it ends (exit 0: succeeded)")
      ->fallthrough()
      ->add_option("id", jobs_cmd.id, "Job id")
      ->required();
  auto* queues = cli.add_subcommand("queues", "Queue counts, pause and resume (list, pause, resume)")->fallthrough();
  queues->require_subcommand(1);
  queues->add_subcommand("list", "Every queue with its counts by state and paused flag")->fallthrough();
  for (const char* action : {"pause", "resume"}) {
    auto* sub = queues->add_subcommand(action, std::string(action) + " a queue, on every instance")->fallthrough();
    sub->add_option("queue", jobs_cmd.queue, "Queue name")->required();
  }
  creatord::KeysCommand keys_cmd;
  auto* keys = cli.add_subcommand("keys", "API keys with scopes (create, list, revoke), in the store the server reads")->fallthrough();
  keys->require_subcommand(1);
  auto* keys_create = keys->add_subcommand("create", "Create a key; prints its secret once")->fallthrough();
  keys_create->add_option("--scopes", keys_cmd.scopes, "Comma-separated: read, write, generate, email, admin (or all)")->required();
  keys_create->add_option("--name", keys_cmd.name, "What the key is for (shown in lists)")->required();
  keys->add_subcommand("list", "Every key: id, name, prefix, scopes, created, last used, revoked")->fallthrough();
  keys->add_subcommand("revoke", "Revoke a key (running servers refuse it within --api-key-refresh)")
      ->fallthrough()
      ->add_option("id", keys_cmd.id, "Key id")
      ->required();
  std::string pipelines_file;
  auto* pipelines = cli.add_subcommand("pipelines", "Work with pipeline files")->fallthrough();
  pipelines->require_subcommand(1);
  auto* check = pipelines->add_subcommand("check", "Validate a pipelines file; point at any mistake")->fallthrough();
  check->add_option("file", pipelines_file, "The TOML file")->required();
  std::string backup_dir;
  auto* backup = cli.add_subcommand("backup", "Copy the data folder (SQLite) into DEST while the server runs: a "
                                              "consistent snapshot, the image files it names, a manifest of checksums")
                     ->fallthrough();
  backup->add_option("dest", backup_dir, "The backup folder; backing up into it again copies only new image files")
      ->required();
  auto* restore = cli.add_subcommand("restore", "Put a backup back into an empty data folder, after checking every "
                                                "checksum")
                      ->fallthrough();
  restore->add_option("src", backup_dir, "The backup folder")->required();
  auto* verify = cli.add_subcommand("verify", "Check the data folder or database: integrity, every image's bytes "
                                              "present with the right hash, no orphans")
                     ->fallthrough();
  creatord::ImportCommand import_opts;
  auto* import_app = cli.add_subcommand("import", "Import creators and images from the original service (Supabase: "
                                                  "its PostgreSQL, or a PostgREST JSON export) through a running creatord")
                         ->fallthrough();
  import_app->add_option("--from", import_opts.from, "postgres://… of the original database");
  import_app->add_option("--from-json", import_opts.from_json,
                         "A JSON export: {\"creators\":[…],\"images\":[…]}, or an array of creators embedding images");
  import_app->add_option("--creators-table", import_opts.creators_table, "The creators table (--from)")
      ->capture_default_str();
  import_app->add_option("--images-table", import_opts.images_table, "The images table (--from; \"\" for none)")
      ->capture_default_str();
  import_app->add_option("--map", import_opts.map_file, "TOML column map: [creators] name = \"full_name\", ...");
  import_app->add_option("--server", import_opts.server, "The creatord to import into (default: http://LISTEN)");
  import_app->add_option("--token", import_opts.token, "Its API token (default: the first configured one)");
  import_app->add_option("--import-concurrency", import_opts.concurrency, "Rows handled at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  import_app->add_option("--import-retries", import_opts.retries, "Retries of a failed download or write")
      ->capture_default_str()
      ->check(CLI::Range(0, 10));
  import_app->add_option("--allow-internal", import_opts.allow_internal,
                         "Internal addresses image downloads may reach, comma-separated (as --step-allow-internal)")
      ->delimiter(',');
  auto* config_tpl = cli.add_subcommand("config-template",
                                        "Print a config file naming every option with its help, at its default (the "
                                        "options given here written out)")
                          ->fallthrough();
  cli.require_subcommand(0, 1);

  std::vector<std::string> args(argv, argv + argc);
  auto merged = creatord::merge_sources(args, cli, [](const char* n) -> const char* { return std::getenv(n); });
  if (!merged) {
    std::cerr << "creatord: " << merged.error().message << "\n";
    return 2;
  }
  std::vector<const char*> cargs;
  for (const auto& a : merged.value()) cargs.push_back(a.c_str());
  try {
    cli.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (print_version || cli.got_subcommand("version")) {
    std::cout << "creatord 0.1.0\n";
    return 0;
  }
  if (cli.got_subcommand(config_tpl)) {
    std::cout << creatord::config_template(cli);
    return 0;
  }
  if (auto s = creatord::finalize(cfg); !s) {
    std::cerr << "creatord: " << s.error().message << "\n";
    return 2;
  }
  if (cli.got_subcommand(backup)) return creatord::run_backup(cfg, backup_dir);
  if (cli.got_subcommand(restore)) return creatord::run_restore(cfg, backup_dir);
  if (cli.got_subcommand(verify)) return creatord::run_verify(cfg);
  if (cli.got_subcommand(import_app)) return creatord::run_import(cfg, import_opts);
  if (pipelines->got_subcommand(check)) return creatord::run_pipelines_check(pipelines_file);
  if (cli.got_subcommand(migrate)) return creatord::run_migrate(std::move(cfg));
  if (cli.got_subcommand(queues)) {
    for (auto* sub : queues->get_subcommands()) jobs_cmd.action = sub->get_name() == "list" ? "queues" : sub->get_name();
    return creatord::run_jobs_command(std::move(cfg), jobs_cmd);
  }
  if (cli.got_subcommand(keys)) {
    for (auto* sub : keys->get_subcommands()) keys_cmd.action = sub->get_name();
    return creatord::run_keys_command(std::move(cfg), keys_cmd);
  }
  if (cli.got_subcommand(jobs)) {
    for (auto* sub : jobs->get_subcommands()) jobs_cmd.action = sub->get_name();
    return creatord::run_jobs_command(std::move(cfg), jobs_cmd);
  }
  (void)serve;
  auto reread = [args] {
    return creatord::load_config(args, [](const char* n) -> const char* { return std::getenv(n); });
  };
  return creatord::run_serve(std::move(cfg), reread);
} catch (const std::exception& e) {
  std::cerr << "creatord: " << e.what() << "\n";
  return 2;
} catch (...) {
  std::cerr << "creatord: unexpected error\n";
  return 2;
}
