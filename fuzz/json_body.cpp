// JSON request bodies into the domain validators, exactly as the API parses them: the first
// byte picks the validator (creator create/patch, email, a generate request's params).
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/json.hpp>

#include "api/errors.hpp"
#include "domain/creator.hpp"
#include "jobs/builtin.hpp"
#include "jobs/pipeline.hpp"
#include "mail/email.hpp"

namespace {

const creatord::PipelineRegistry& pipelines() {
  static creatord::PipelineRegistry* r = [] {
    auto* reg = new creatord::PipelineRegistry();
    creatord::add_builtin_pipelines(*reg);
    return reg;
  }();
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  creatord::http::Request req;
  req.method = creatord::http::Method::post;
  req.headers.push_back({"Content-Type", "application/json"});
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto body = creatord::api::parse_json_body(req);
  if (!body) return 0;
  const auto& v = body.value();
  switch (data[0] % 4) {
    case 0:
    case 1: {
      auto mode = data[0] % 4 == 0 ? creatord::FieldsMode::create : creatord::FieldsMode::patch;
      auto fields = creatord::parse_creator_fields(v, mode);
      if (fields) {
        creatord::Creator c;
        creatord::apply_fields(c, fields.value());
        (void)boost::json::serialize(creatord::to_json(c));
      }
      break;
    }
    case 2: {
      creatord::MailLimits limits;
      auto e = creatord::parse_email_request(v, limits);
      if (e) {
        auto& mail = e.value();
        mail.from = "creatord <noreply@example.com>";
        (void)creatord::build_mime(mail);
        (void)boost::json::serialize(creatord::to_json(mail));
      }
      break;
    }
    case 3:
      for (const auto* p : pipelines().all()) (void)creatord::resolve_params(*p, v);
      break;
  }
  return 0;
}
