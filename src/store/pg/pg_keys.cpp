// API keys on PostgreSQL (auth/api_keys.hpp).
#include "store/pg/pg_store_ops.hpp"

namespace creatord {

namespace asio = boost::asio;
using namespace pgx;

namespace {

#define KEY_COLS "id, name, prefix, key_hash, scopes, created_at, revoked_at, last_used_at"

auth::ApiKey key_at(const Rows& r, int i) {
  auth::ApiKey k;
  k.id = r.int64(i, 0);
  k.name = r.text(i, 1);
  k.prefix = r.text(i, 2);
  k.hash = r.text(i, 3);
  k.scopes = auth::stored_scopes(r.text(i, 4));
  k.created_at_ms = r.int64(i, 5);
  if (!r.is_null(i, 6)) k.revoked_at_ms = r.int64(i, 6);
  if (!r.is_null(i, 7)) k.last_used_at_ms = r.int64(i, 7);
  return k;
}

Result<auth::ApiKey> one_key(const Result<Rows>& r, int64_t id) {
  if (!r) return r.error();
  if (r->size() == 0) return not_found(fmt::format("key {} does not exist", id));
  return key_at(r.value(), 0);
}

}  // namespace

Async<auth::ApiKey> PgStore::create_key(auth::NewApiKey key, int64_t now) {
  return with_conn<auth::ApiKey>([key = std::move(key), now](Connection& c) -> asio::awaitable<Result<auth::ApiKey>> {
    std::string scopes = auth::scopes_text(key.scopes);
    auto r = co_await q(c,
                        "INSERT INTO creatord.api_keys (name, prefix, key_hash, scopes, created_at) "
                        "VALUES ($1, $2, $3, $4, $5) RETURNING " KEY_COLS,
                        key.name, key.prefix, key.hash, scopes, now);
    co_return one_key(r, 0);
  });
}

Async<std::vector<auth::ApiKey>> PgStore::list_keys() {
  return with_conn<std::vector<auth::ApiKey>>([](Connection& c) -> asio::awaitable<Result<std::vector<auth::ApiKey>>> {
    auto r = co_await x(c, "SELECT " KEY_COLS " FROM creatord.api_keys ORDER BY id");
    if (!r) co_return r.take_error();
    std::vector<auth::ApiKey> out;
    for (int i = 0; i < r->size(); ++i) out.push_back(key_at(r.value(), i));
    co_return out;
  });
}

Async<auth::ApiKey> PgStore::revoke_key(int64_t id, int64_t now) {
  return with_conn<auth::ApiKey>([id, now](Connection& c) -> asio::awaitable<Result<auth::ApiKey>> {
    auto r = co_await q(c,
                        "UPDATE creatord.api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 "
                        "RETURNING " KEY_COLS,
                        id, now);
    co_return one_key(r, id);
  });
}

Async<Unit> PgStore::touch_keys(std::vector<std::pair<int64_t, int64_t>> used) {
  return with_conn<Unit>([used = std::move(used)](Connection& c) -> asio::awaitable<Result<Unit>> {
    std::vector<std::optional<std::string>> ids, times;
    for (const auto& [id, at] : used) {
      ids.emplace_back(std::to_string(id));
      times.emplace_back(std::to_string(at));
    }
    std::string id_list = text_array(ids), time_list = text_array(times);
    auto r = co_await q(c,
                        "UPDATE creatord.api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at) "
                        "FROM unnest($1::text[]::bigint[], $2::text[]::bigint[]) AS u(id, at) WHERE k.id = u.id",
                        id_list, time_list);
    if (!r) co_return r.take_error();
    co_return Unit{};
  });
}

}  // namespace creatord
