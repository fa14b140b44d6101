// Image bytes in PostgreSQL, through the store's own pool: the blob store needs no connections of
// its own, so `--database-connections` bounds everything creatord opens. Callers run it on a
// BlockingPool thread (the BlobStore interface is blocking); each call waits there, never on an
// I/O thread, for a coroutine on the store's event loop.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "core/clock.hpp"
#include "store/pg/pg_store_ops.hpp"

namespace creatord {

namespace asio = boost::asio;
using namespace pgx;

namespace {

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return Error::make(ErrorCode::internal, "image bytes are damaged");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Error::make(ErrorCode::internal, "image bytes are damaged");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

template <class T, class F>
Result<T> PgBlobStore::run(F fn) {
  auto done = asio::co_spawn(store_.ioc_, store_.with_conn<T>(std::move(fn)), asio::use_future);
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    return Error::make(ErrorCode::unavailable, "database did not answer in time");
  try {
    return done.get();
  } catch (const std::exception& e) {
    return Error::make(ErrorCode::internal, e.what());
  }
}

Status PgBlobStore::put(const std::string& sha256, std::string_view bytes) {
  auto hex = std::make_shared<std::string>(to_hex(bytes));
  return run<Unit>([sha256, hex](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c,
                        "INSERT INTO creatord.blobs (sha256, bytes, created_at) VALUES ($1, decode($2, 'hex'), $3) "
                        "ON CONFLICT (sha256) DO UPDATE SET created_at = EXCLUDED.created_at",
                        sha256, *hex, now_ms());
    if (!r) co_return r.take_error();
    co_return Unit{};
  });
}

Result<std::string> PgBlobStore::get(const std::string& sha256) {
  auto hex = run<std::string>([sha256](Connection& c) -> asio::awaitable<Result<std::string>> {
    auto r = co_await q(c, "SELECT encode(bytes, 'hex') FROM creatord.blobs WHERE sha256 = $1", sha256);
    if (!r) co_return r.take_error();
    if (r->size() == 0) co_return Error::make(ErrorCode::not_found, "image bytes are missing");
    co_return std::string(r->text(0, 0));
  });
  if (!hex) return hex.take_error();
  return from_hex(hex.value());  // here, on the caller's pool thread, not the store's loop
}

Status PgBlobStore::remove(const std::string& sha256) {
  return run<Unit>([sha256](Connection& c) -> asio::awaitable<Result<Unit>> {
    auto r = co_await q(c,
                        "DELETE FROM creatord.blobs b WHERE sha256 = $1 AND NOT EXISTS "
                        "(SELECT 1 FROM creatord.images i WHERE i.sha256 = b.sha256)",
                        sha256);
    if (!r) co_return r.take_error();
    co_return Unit{};
  });
}

std::vector<std::string> PgBlobStore::older_than(std::chrono::seconds age) {
  int64_t cutoff = now_ms() - age.count() * 1000;
  auto r = run<std::vector<std::string>>([cutoff](Connection& c) -> asio::awaitable<Result<std::vector<std::string>>> {
    auto rows = co_await q(c, "SELECT sha256 FROM creatord.blobs WHERE created_at < $1 LIMIT 10000", cutoff);
    if (!rows) co_return rows.take_error();
    std::vector<std::string> out;
    for (int i = 0; i < rows->size(); ++i) out.emplace_back(rows->text(i, 0));
    co_return out;
  });
  return r ? std::move(r.value()) : std::vector<std::string>{};
}

}  // namespace creatord
