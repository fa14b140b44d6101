// Secrets this process knows (values of ${VAR} in the pipelines file, the SMTP password, database
// passwords) and URL credentials (`scheme://user:pass@host`) are replaced by "[redacted]" wherever
// text can reach a client or the log: step errors, logs and outputs, a job's last_error and
// result, log lines. One process-wide set, filled at start-up; reads take no lock.
#pragma once
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace creatord {

inline constexpr std::string_view kRedacted = "[redacted]";
// Shorter values are not treated as secrets: "1" or "on" would blank out unrelated text.
inline constexpr size_t kMinSecretLength = 4;

// Adds a secret (and its percent-encoded form, which is how it appears in a URL). Thread-safe.
void add_secret(std::string_view secret);
// The password of a URL's userinfo (`postgres://u:PASS@h/db`), if it has one, as a secret.
void add_url_password_secret(std::string_view url);
// Forgets every secret (tests).
void clear_secrets();

// text with every known secret and every URL's userinfo replaced by [redacted].
std::string redact(std::string_view text);
// Whether redact(text) would change anything (cheap enough for the log's hot path).
bool needs_redaction(std::string_view text);
// redact() applied to every string (keys aside) in a JSON value, in place.
void redact_json(boost::json::value& value);

}  // namespace creatord
