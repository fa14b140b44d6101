// creatord: a backend for creator content generation. See README.md.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/app.hpp"
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
  if (auto s = creatord::finalize(cfg); !s) {
    std::cerr << "creatord: " << s.error().message << "\n";
    return 2;
  }
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
  return creatord::run_serve(std::move(cfg));
} catch (const std::exception& e) {
  std::cerr << "creatord: " << e.what() << "\n";
  return 2;
} catch (...) {
  std::cerr << "creatord: unexpected error\n";
  return 2;
}
