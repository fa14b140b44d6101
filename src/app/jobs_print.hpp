// How `creatord jobs` prints jobs for a person (a table, indented JSON, colours on a terminal)
// and for a script (--json: one compact JSON line). Pure: the caller writes the text.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include "queue/job.hpp"

namespace creatord {

// True when the stream is a terminal, NO_COLOR is unset and TERM is not "dumb".
bool use_color(std::FILE* stream);
// A header line, then one line per job: ID KIND STATE ATTEMPT PROGRESS CREATOR CREATED.
std::string jobs_table(const std::vector<Job>& jobs, bool color);
// {"items":[...]} with each job as the API shows it, on one line.
std::string jobs_json(const std::vector<Job>& jobs);
// The job as the API shows it, indented; with color, the state stands out.
std::string job_details(const Job& job, bool color);

}  // namespace creatord
