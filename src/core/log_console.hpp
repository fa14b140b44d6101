// How log lines look: JSON lines (for machines: journald, Loki, jq) or aligned, coloured text for
// a person at a terminal, like uvicorn's. Chosen once at start (`--log-format`).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/log.hpp"

namespace creatord::log {

enum class Format { json, text };

// "auto": text when stdout is a terminal, else JSON; "json"; "text". False for anything else.
bool parse_format(std::string_view name, bool stdout_is_terminal, Format& out);
// Applies to every line written from now on; colour: ANSI colours in text lines.
void set_format(Format format, bool colour);

// One text line without its newline: "12:01:02.345 INFO     listening            port=8000 ...";
// a request line reads "GET /api/creators 200 1.2ms (127.0.0.1)". ts_ms: milliseconds since the epoch.
std::string text_line(int64_t ts_ms, Level level, std::string_view msg, std::initializer_list<Field> fields,
                      bool colour);

}  // namespace creatord::log
