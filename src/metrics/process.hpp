// The process's own figures, Prometheus's standard names: resident and virtual memory, CPU time,
// open and allowed descriptors, start time. Read from /proc (kernel memory: microseconds, never
// a disk), so a scrape may read them on its I/O thread.
#pragma once
#include "metrics/exposition.hpp"

namespace creatord::metrics {

void write_process_metrics(Exposition& out);

}  // namespace creatord::metrics
