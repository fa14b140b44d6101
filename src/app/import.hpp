// `creatord import`: creators and images from the service creatord replaces (Supabase: a
// PostgreSQL database, or a PostgREST export as JSON), written through a running creatord's API
// so that its caches, limits and checks apply as to any client. Creators keep their original id as
// external_id and their created_at; images are downloaded (the outgoing-address rules of steps:
// internal addresses only when allowed) and uploaded with their URL as source_url. Running it
// again imports only what is missing.
#pragma once
#include <string>
#include <vector>

#include "app/config.hpp"

namespace creatord {

struct ImportCommand {
  std::string from;       // postgres://… of the original database
  std::string from_json;  // or a JSON file: {"creators":[…],"images":[…]}, or an array of creators
  std::string creators_table = "public.creators";
  std::string images_table = "public.images";  // "" or absent table: creators only
  std::string map_file;
  std::string server;  // the creatord to write to; empty: http://LISTEN from the configuration
  std::string token;   // empty: the first configured API token, if any
  size_t concurrency = 4;
  int retries = 3;
  std::vector<std::string> allow_internal;  // internal addresses image downloads may reach
};

// Exit status: 0 all imported (or there already), 1 some rows failed (each named), 2 nothing done.
int run_import(const Config& cfg, const ImportCommand& cmd);

}  // namespace creatord
