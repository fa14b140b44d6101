// Queue throughput on the embedded store: enqueue N no-op jobs in batches, run them with the
// real engine, and measure enqueue-to-start latency when idle. Prints rates and the ratio of
// execution to the raw commit rate of the same store measured in the same run.
//   build/queue_bench [--jobs 10000] [--concurrency 256] [--batch 500] [--latency-samples 300]
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <CLI/CLI.hpp>

#include "../tests/unit/run_awaitable.hpp"
#include "jobs/engine.hpp"
#include "jobs/event_hub.hpp"
#include "store/pg/pg_migrations.hpp"
#include "store/pg/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace creatord;
namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;


double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int main(int argc, char** argv) {
  int jobs = 10000, concurrency = 256, batch = 500, samples = 300;
  std::string sync = "FULL";
  std::string database_url;
  int instances = 1;
  CLI::App app{"creatord queue benchmark"};
  app.add_option("--database-url", database_url, "PostgreSQL (an empty database); default: SQLite in a temp folder");
  app.add_option("--instances", instances, "Engines sharing the queue (PostgreSQL), each with its own connections");
  app.add_option("--jobs", jobs);
  app.add_option("--concurrency", concurrency);
  app.add_option("--batch", batch);
  app.add_option("--latency-samples", samples);
  app.add_option("--sqlite-synchronous", sync);
  CLI11_PARSE(app, argc, argv);

  auto dir = std::filesystem::temp_directory_path() / ("creatord-qbench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SqliteOptions so;
  so.path = (dir / "bench.db").string();
  so.synchronous = sync;
  so.queue_limit = 1'000'000;
  std::vector<std::unique_ptr<Store>> owners;
  std::vector<queue::Driver*> stores;
  if (database_url.empty()) {
    auto sq = std::move(SqliteStore::open(so).value());
    stores.push_back(sq.get());
    owners.push_back(std::move(sq));
    instances = 1;
  } else {
    for (int i = 0; i < instances; ++i) {
      auto p = PgStore::open(PgOptions{database_url, 16, std::chrono::seconds(5)});
      if (!p) {
        std::cerr << p.error().message << "\n";
        return 1;
      }
      stores.push_back(p.value().get());
      owners.push_back(std::move(p.value()));
    }
  }
  std::vector<std::unique_ptr<EventHub>> hubs;
  std::vector<std::unique_ptr<queue::JobQueue>> queues;
  for (auto* s : stores) {
    hubs.push_back(std::make_unique<EventHub>());
    queues.push_back(std::make_unique<queue::JobQueue>(*s, *hubs.back(), system_clock()));
  }
  queue::JobQueue* store = queues.front().get();

  // Reference: the same store committing one trivial write per transaction, back to back.
  auto ref_start = SteadyClock::now();
  int ref_n = 200;
  for (int i = 0; i < ref_n; ++i) {
    NewJob n;
    n.kind = "reference";
    n.queue = "reference";
    run(store->enqueue(n));
  }
  double ref_rate = ref_n / std::chrono::duration<double>(SteadyClock::now() - ref_start).count();

  // 1. Enqueue, batched.
  auto t0 = SteadyClock::now();
  for (int done = 0; done < jobs; done += batch) {
    std::vector<NewJob> b;
    for (int i = done; i < std::min(jobs, done + batch); ++i) {
      NewJob n;
      n.kind = "noop";
      n.queue = "bench";
      b.push_back(std::move(n));
    }
    run(store->enqueue_many(std::move(b)));
  }
  double enqueue_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();

  // 2. Execute with the real engine.
  EngineOptions eo;
  eo.queues = {{"bench", concurrency}, {"latency", 8}};
  eo.claim_batch = 256;
  eo.poll_ms = 50;
  std::atomic<int> started{0};
  std::mutex mu;
  std::vector<SteadyClock::time_point> start_times;
  eo.exclusive = database_url.empty();
  std::vector<std::unique_ptr<JobEngine>> engines;
  for (int i = 0; i < instances; ++i) {
    if (!database_url.empty()) static_cast<PgStore*>(stores[i])->listen(*hubs[i]);
    auto engine = std::make_unique<JobEngine>(eo, *queues[i], *hubs[i]);
    engine->handle("noop", [&](JobRun&) -> asio::awaitable<JobOutcome> {
      started.fetch_add(1);
      co_return JobOutcome{JobOutcome::Kind::succeeded, nullptr, "", false};
    });
    engine->handle("probe", [&](JobRun&) -> asio::awaitable<JobOutcome> {
      {
        std::lock_guard lock(mu);
        start_times.push_back(SteadyClock::now());
      }
      co_return JobOutcome{JobOutcome::Kind::succeeded, nullptr, "", false};
    });
    engines.push_back(std::move(engine));
  }
  auto t1 = SteadyClock::now();
  for (auto& e : engines) e->start();
  // Until every job has started, nothing is asked of the store (the bench's own reads would take
  // a core from the queue); then until none is running.
  while (started.load() < jobs) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (;;) {
    PageQuery q;
    q.limit = 1;
    auto next = run(store->next_run_at("bench"));  // 0: nothing scheduled for later
    JobFilter running;
    running.state = JobState::running;
    auto r = run(store->list_jobs(running, q));
    if (next.ok() && next.value() == 0 && r.ok() && r->items.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double exec_s = std::chrono::duration<double>(SteadyClock::now() - t1).count();

  // 3. Enqueue-to-start latency, one job at a time on an idle engine.
  std::vector<double> lat;
  for (int i = 0; i < samples; ++i) {
    size_t before;
    {
      std::lock_guard lock(mu);
      before = start_times.size();
    }
    NewJob n;
    n.kind = "probe";
    n.queue = "latency";
    auto begin = SteadyClock::now();
    run(store->enqueue(n));  // the queue wakes its workers
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (start_times.size() > before) {
          lat.push_back(std::chrono::duration<double, std::milli>(start_times.back() - begin).count());
          break;
        }
      }
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& e : engines) e->stop();
  for (auto& o : owners) o->close();
  std::filesystem::remove_all(dir);

  std::cout << "jobs " << jobs << ", concurrency " << concurrency << " per engine, batch " << batch << ", "
            << (database_url.empty() ? "sqlite synchronous=" + sync : "postgresql, " + std::to_string(instances) + " engine(s)")
            << ", " << std::thread::hardware_concurrency() << " cores\n";
  std::printf("enqueue (batched)   %10.0f jobs/s\n", jobs / enqueue_s);
  std::printf("execute             %10.0f jobs/s  (%.2f s for all)\n", jobs / exec_s, exec_s);
  std::printf("enqueue-to-start    p50 %.2f ms  p99 %.2f ms  (idle, %d samples)\n", percentile(lat, 0.5),
              percentile(lat, 0.99), samples);
  std::printf("reference: one job per transaction %8.0f jobs/s; execute/reference = %.1fx\n", ref_rate,
              (jobs / exec_s) / ref_rate);
  return 0;
}
