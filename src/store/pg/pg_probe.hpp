// What a PostgreSQL URL leads to, found at start-up, so a wrong URL is one clear log line with
// its fix instead of 500s later: a transaction-mode pooler (PgBouncer pool_mode=transaction,
// Supavisor on port 6543), TLS required but not offered, an address this machine cannot reach.
#pragma once
#include <chrono>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace creatord::pg {

// True when consecutive statements of one client connection can run on different server
// connections (transaction or statement pooling): session state (LISTEN, SET, session advisory
// locks) does not hold there. Opens two connections for a moment; compares the server process
// each statement ran on, which is constant per client directly and through a session pooler.
// Runs its own event loop (start-up only).
Result<bool> is_transaction_pooled(const std::string& conninfo, std::chrono::milliseconds timeout);

// For an error from connecting or the first statements: one sentence saying how to fix it, or
// "" when there is nothing better to say than the error itself. Pure (unit-tested).
std::string fix_for(std::string_view conninfo, std::string_view error);

// The error with its fix appended, when there is one.
Error with_fix(std::string_view conninfo, Error e);

}  // namespace creatord::pg
