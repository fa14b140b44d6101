// The small template language of configured pipelines. In any string of a step's input, command,
// URL, headers or body, `{{ path }}` is replaced by the value at path in the context:
//   params.<name>            the job's parameters
//   creator.<field>          the creator (id, name, handle, email, bio, tags)
//   steps.<step>.output...   an earlier step's output
//   job.id, job.attempt      the job
//   response.<field>         (http polling only) the last response
// A string that is exactly one `{{ path }}` becomes that value with its JSON type (an array stays
// an array); otherwise values are inserted as text (strings as is, others as JSON). Path parts are
// object keys or array indexes: `steps.render.output.images.0.id`. A path that names nothing is
// an error, never an empty string.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace creatord {

Result<boost::json::value> render_template(const boost::json::value& tmpl, const boost::json::value& context);
Result<std::string> render_string(std::string_view tmpl, const boost::json::value& context);
// render_string for a URL: values percent-encoded (all but RFC 3986 unreserved characters)
// unless `| raw`; a value that is "." or ".." in the path is an error.
Result<std::string> render_url(std::string_view tmpl, const boost::json::value& context);
// A URL template whose first piece is a placeholder must say `| raw`: the value is a whole URL.
Status check_url_template(std::string_view tmpl);
// `${NAME}` from the process environment (for secrets and addresses in an http step's url and
// headers, and in an exec step's env); unset is an error.
Result<std::string> expand_env(std::string_view text);
// Records the value of every `${NAME}` in text as a secret (core/redact.hpp): whatever comes
// from the environment is redacted wherever it could surface.
void add_env_secrets(std::string_view text);
// The top-level names of the params a template needs (`{{ params.style }}` needs "style"), in
// every string of tmpl; malformed placeholders are skipped (check_template reports them).
void params_used(const boost::json::value& tmpl, std::vector<std::string>& names);
// Checks the syntax of every {{ }} in a template (for `pipelines check`), without a context.
Status check_template(const boost::json::value& tmpl);

}  // namespace creatord
