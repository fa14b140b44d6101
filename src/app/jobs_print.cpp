#include "app/jobs_print.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/json_text.hpp"

namespace creatord {

namespace {

std::string_view state_color(std::string_view state) {
  if (state == "succeeded") return "\x1b[32m";
  if (state == "failed") return "\x1b[31m";
  if (state == "cancelled") return "\x1b[33m";
  if (state == "running") return "\x1b[36m";
  return "";
}

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

boost::json::object event_data(const JobEvent& e) {
  boost::system::error_code ec;
  auto v = boost::json::parse(e.data, ec);
  return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}

std::string text_of(const boost::json::object& o, std::string_view key) {
  auto v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string bar(double progress, size_t width) {
  auto full = static_cast<size_t>(std::clamp(progress, 0.0, 1.0) * static_cast<double>(width) + 0.5);
  return "[" + std::string(full, '#') + std::string(width - full, '-') + "]";
}

}  // namespace

WatchView::WatchView(const Job& job) : id_(job.id), kind_(job.kind), state_(to_string(job.state)), error_(job.last_error) {
  for (const auto& s : job.steps) steps_.push_back(Step{s.name, s.state, s.state == "succeeded" ? 1.0 : 0.0, s.error});
}

WatchView::Step* WatchView::step(std::string_view name) {
  for (auto& s : steps_)
    if (s.name == name) return &s;
  steps_.push_back(Step{std::string(name)});
  return &steps_.back();
}

void WatchView::apply(const JobEvent& e) {
  auto data = event_data(e);
  std::string_view type = e.type;
  if (type.rfind("step.", 0) == 0) {
    Step* s = step(text_of(data, "step"));
    if (type == job_event::step_started) *s = Step{s->name, "running", 0, ""};
    if (auto p = data.if_contains("progress"); p && p->is_number()) s->progress = p->to_number<double>();
    if (type == job_event::step_progress) s->message = text_of(data, "message");
    if (type == job_event::step_finished) {
      s->state = text_of(data, "state");
      s->message = text_of(data, "error");
      if (s->state == "succeeded") s->progress = 1;
    }
    return;
  }
  if (auto st = text_of(data, "state"); !st.empty()) state_ = st;
  else if (type == job_event::started) state_ = "running";
  if (auto err = text_of(data, "error"); !err.empty()) error_ = err;
  finished_ = type == job_event::finished;
}

std::string WatchView::frame(bool color) const {
  size_t width = 4;
  double sum = 0;
  for (const auto& s : steps_) {
    width = std::max(width, s.name.size());
    sum += s.progress;
  }
  double overall = steps_.empty() ? 0 : sum / static_cast<double>(steps_.size());
  std::string_view job_color = color ? state_color(state_) : "";
  std::string out = fmt::format("job {} {}: {}{}{}  {:.0f}%{}\n", id_, kind_, job_color, state_, job_color.empty() ? "" : "\x1b[0m",
                                overall * 100, error_.empty() || state_ == "succeeded" ? "" : "  " + error_);
  for (const auto& s : steps_) {
    std::string_view c = color ? state_color(s.state) : "";
    std::string line = fmt::format("{} {:>3.0f}%  {}", bar(s.progress, 20), s.progress * 100, s.state);
    if (!c.empty()) line = fmt::format("{}{}\x1b[0m", c, line);
    out += fmt::format("  {:<{}}  {}{}\n", s.name, width, line, s.message.empty() ? "" : "  " + s.message);
  }
  return out;
}

std::string event_line(const JobEvent& e) {
  auto data = event_data(e);
  std::string line = e.type;
  if (auto step = text_of(data, "step"); !step.empty()) line += " " + step;
  if (auto p = data.if_contains("progress"); p && p->is_number()) line += fmt::format(" {:.0f}%", p->to_number<double>() * 100);
  for (const char* key : {"state", "message", "error"})
    if (auto t = text_of(data, key); !t.empty()) line += " " + t;
  return line + "\n";
}

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
