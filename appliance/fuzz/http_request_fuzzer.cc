// libFuzzer harness for the front end's HTTP/1.1 request parser (http_message.h), which reads
// every byte a client sends before any authentication. The input is the bytes on the wire,
// parsed with small limits so that the caps are reached. Invariants: a complete request
// consumed no more than it was given, is within every cap (request line, header section, field
// count, body), has a token method, an origin-form target and a known version, and parses the
// same from exactly the bytes it consumed; any shorter prefix of it is incomplete; a refusal
// carries a status the front end documents and a message. Run by `make fuzz`; the corpus runs
// in every `make test` (tests/fuzz).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http_message.h"

namespace ijazat::appliance::fuzz {
namespace {

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

HttpLimits SmallLimits() {
  HttpLimits limits;
  limits.max_request_line = 256;
  limits.max_header_bytes = 1024;
  limits.max_header_fields = 16;
  limits.max_body_bytes = 512;
  return limits;
}

void CheckComplete(std::string_view data, const HttpLimits& limits, const HttpParse& parse,
                   const HttpRequest& request) {
  Require(parse.consumed > 0 && parse.consumed <= data.size());
  Require(request.body.size() <= limits.max_body_bytes);
  Require(request.headers.size() <= limits.max_header_fields);
  Require(request.target.size() <= limits.max_request_line);
  Require(!request.method.empty());
  Require(!request.target.empty() && request.target[0] == '/');
  Require(request.minor_version == 0 || request.minor_version == 1);
  // The same request from exactly its own bytes, and nothing complete from fewer.
  HttpRequest again;
  const HttpParse exact = ParseHttpRequest(data.substr(0, parse.consumed), limits, &again);
  Require(exact.state == HttpParse::State::kComplete && exact.consumed == parse.consumed);
  Require(again.method == request.method && again.target == request.target &&
          again.body == request.body && again.headers == request.headers);
  HttpRequest shorter;
  const HttpParse prefix = ParseHttpRequest(data.substr(0, parse.consumed - 1), limits, &shorter);
  Require(prefix.state == HttpParse::State::kIncomplete);
}

}  // namespace
}  // namespace ijazat::appliance::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  using namespace ijazat::appliance;
  using ijazat::appliance::fuzz::Require;
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  const HttpLimits limits = fuzz::SmallLimits();
  HttpRequest request;
  const HttpParse parse = ParseHttpRequest(data, limits, &request);
  switch (parse.state) {
    case HttpParse::State::kComplete:
      fuzz::CheckComplete(data, limits, parse, request);
      break;
    case HttpParse::State::kInvalid:
      Require(parse.status == 400 || parse.status == 413 || parse.status == 414 ||
              parse.status == 417 || parse.status == 431 || parse.status == 501 ||
              parse.status == 505);
      Require(!parse.message.empty());
      break;
    case HttpParse::State::kIncomplete:
      // Waiting for more is only allowed while within the caps.
      Require(data.size() <= limits.max_header_bytes + 8 * limits.max_body_bytes + 4096);
      break;
  }
  return 0;
}
