#include "net/http_client.hpp"

#include <curl/curl.h>

#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <mutex>

namespace creatord {

namespace {
std::once_flag g_init;

struct Sink {
  HttpReply* reply;
  size_t max;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t len = size * n;
  if (s->reply->body.size() + len > s->max) {
    s->reply->too_large = true;
    return 0;  // aborts the transfer
  }
  s->reply->body.append(data, len);
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<HttpReply*>(user);
  std::string_view line(data, size * n);
  auto value = [&](std::string_view name) -> std::optional<std::string> {
    if (line.size() <= name.size() || strncasecmp(line.data(), name.data(), name.size()) != 0) return std::nullopt;
    std::string_view v = line.substr(name.size());
    while (!v.empty() && (v.front() == ' ')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
    return std::string(v);
  };
  if (auto v = value("retry-after:")) r->retry_after = *v;
  return size * n;
}

// Every connection libcurl opens (each address it tries) is checked here, after resolution and
// just before connect: the address used is the address checked.
struct Target {
  const AddressPolicy* policy;
  std::string host;  // as written in the URL
  HttpReply* reply;
};

curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* addr) {
  auto* t = static_cast<Target*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN || !t->policy->allows(t->host, &addr->addr)) {
    t->reply->refused = true;
    t->reply->refused_address = address_text(&addr->addr);
    return CURL_SOCKET_BAD;
  }
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

std::string url_host(const std::string& url) {
  std::string host;
  if (CURLU* u = curl_url()) {
    char* h = nullptr;
    if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h)
      host = h;
    curl_free(h);
    curl_url_cleanup(u);
  }
  return host;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel && cancel->load() ? 1 : 0;
}
}  // namespace

HttpReply http_call(const HttpCall& call) {
  std::call_once(g_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpReply reply;
  CURL* curl = curl_easy_init();
  if (!curl) {
    reply.error = "cannot create a libcurl handle";
    return reply;
  }
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : call.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  Sink sink{&reply, call.max_response_bytes};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  if (!call.body.empty() || call.method == "POST" || call.method == "PUT" || call.method == "PATCH") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(call.cancel));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(call.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  if (call.stall_timeout.count() > 0) {
    // Whole seconds (libcurl's unit), at least one.
    long stall_s = std::max<long>(1, static_cast<long>((call.stall_timeout.count() + 999) / 1000));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(std::max<size_t>(call.min_rate, 1)));
  }
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  Target target{&call.allow_internal, url_host(call.url), &reply};
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &target);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is the caller's answer, never followed
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(call.max_response_bytes));
  // TLS is verified (libcurl's default, kept on purpose).
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  char* ct = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) reply.content_type = ct;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc == CURLE_FILESIZE_EXCEEDED) reply.too_large = true;  // a Content-Length above the limit
  if (reply.too_large) {
    // Refused whole: what arrived before the limit is a truncated answer, never a result.
    reply.body.clear();
    reply.body.shrink_to_fit();
    reply.status = static_cast<int>(status);
    reply.error = "response larger than " + std::to_string(call.max_response_bytes) + " bytes";
  } else if (reply.refused && rc != CURLE_OK) {
    reply.status = 0;
    reply.body.clear();
    reply.error = "target address not allowed";
  } else if (rc != CURLE_OK) {
    reply.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    reply.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    reply.status = 0;
    reply.body.clear();  // a partial answer is no answer
  } else {
    reply.status = static_cast<int>(status);
    reply.refused = false;  // one address refused, another (allowed) one answered
  }
  return reply;
}

}  // namespace creatord
