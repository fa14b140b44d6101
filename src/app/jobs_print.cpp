#include "app/jobs_print.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"

namespace creatord {

namespace {

std::string_view state_color(JobState s) {
  switch (s) {
    case JobState::succeeded: return "\x1b[32m";  // green
    case JobState::failed: return "\x1b[31m";     // red
    case JobState::cancelled: return "\x1b[33m";  // yellow
    case JobState::running: return "\x1b[36m";    // cyan
    default: return "";
  }
}

// Pads before colouring, so escape codes do not shift the columns.
std::string cell(std::string_view text, size_t width, std::string_view color) {
  std::string padded = fmt::format("{:<{}}", text, width);
  if (color.empty()) return padded;
  return fmt::format("{}{}\x1b[0m", color, padded);
}

}  // namespace

bool use_color(std::FILE* stream) {
  const char* term = std::getenv("TERM");
  if (std::getenv("NO_COLOR") || (term && std::string_view(term) == "dumb")) return false;
  return ::isatty(::fileno(stream)) == 1;
}

std::string jobs_table(const std::vector<Job>& jobs, bool color) {
  std::string out = fmt::format("{:>6}  {:<10} {:<10} {:<8} {:>8}  {:<7}  {}", "ID", "KIND", "STATE", "ATTEMPT",
                                "PROGRESS", "CREATOR", "CREATED");
  out = color ? fmt::format("\x1b[1m{}\x1b[0m\n", out) : out + "\n";
  for (const auto& j : jobs) {
    std::string_view state = to_string(j.state);
    out += fmt::format("{:>6}  {:<10} {} {:<8} {:>7.0f}%  {:<7}  {}\n", j.id, j.kind,
                       cell(state, 10, color ? state_color(j.state) : ""), fmt::format("{}/{}", j.attempt, j.max_attempts),
                       j.progress * 100, j.creator_id ? std::to_string(*j.creator_id) : "-",
                       format_rfc3339(j.created_at_ms));
  }
  if (jobs.empty()) out += "(no jobs)\n";
  return out;
}

std::string jobs_json(const std::vector<Job>& jobs) {
  boost::json::array items;
  for (const auto& j : jobs) items.push_back(to_json(j));
  return to_json_text(boost::json::object{{"items", std::move(items)}}) + "\n";
}

std::string job_details(const Job& job, bool color) {
  std::string text = to_json_text(to_json(job), 2) + "\n";
  std::string_view c = color ? state_color(job.state) : "";
  if (c.empty()) return text;
  std::string plain = fmt::format("\"state\": \"{}\"", to_string(job.state));
  if (auto at = text.find(plain); at != std::string::npos) text.replace(at, plain.size(), fmt::format("{}{}\x1b[0m", c, plain));
  return text;
}

}  // namespace creatord
