// The one place that knows every part: it builds the store, the API and the server from the
// configuration and runs them.
#pragma once
#include "app/config.hpp"

namespace creatord {

// `creatord serve`: runs until SIGINT/SIGTERM; returns the process exit code.
int run_serve(Config cfg);
// `creatord migrate`: applies the store's migrations and exits.
int run_migrate(Config cfg);

}  // namespace creatord
