// HTTP/1.1 messages as the appliance's front end sees them: a strict, incremental request
// parser with hard limits (RFC 9112), and the response it writes back. No I/O here, so the
// parser can be tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ijazat::appliance {

struct HttpLimits {
  std::size_t max_request_line = std::size_t{8} * 1024;
  std::size_t max_header_bytes =
      std::size_t{16} * 1024;  // the whole header section, request line included
  std::size_t max_header_fields = 100;
  std::size_t max_body_bytes = std::size_t{16} * 1024;
};

struct HttpRequest {
  std::string method;
  std::string target;  // origin-form, as sent: "/v1/consents?x=y"
  int minor_version = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed
  std::string body;                                          // de-chunked
  bool keep_alive = true;

  // What the connection knows of the client.
  std::string client_address;
  bool client_loopback = false;
  std::string peer_certificate_sha256;  // 32 raw bytes when a client certificate was verified

  // The first field with this name (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const { return Header(name) != nullptr; }
  // The media type of Content-Type, lower-cased, without parameters ("" when absent).
  std::string MediaType() const;
  // The path of the target, without the query.
  std::string_view Path() const;
  // The raw query (after '?', without the fragment), or "".
  std::string_view RawQuery() const;
};

struct HttpParse {
  enum class State { kIncomplete, kComplete, kInvalid };
  State state = State::kIncomplete;
  std::size_t consumed = 0;  // kComplete: the bytes of this request (pipelined data follows)
  int status = 0;            // kInvalid: the status to answer with (400, 413, 414, 431, 501, 505)
  std::string message;       // kInvalid: what is wrong, for the client
  // kIncomplete: the header section is in and the client asked for "100-continue".
  bool expect_continue = false;
};

// Parses one request from the start of `data`. kIncomplete asks for more bytes; kInvalid
// means the connection must answer `status` and close, because the framing is lost.
HttpParse ParseHttpRequest(std::string_view data, const HttpLimits& limits, HttpRequest* request);

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
  std::string body;
  bool close = false;  // "Connection: close" and close the connection once written
};

// The bytes on the wire; `head_only` for HEAD (headers as for GET, no body).
std::string SerializeHttpResponse(const HttpResponse& response, bool keep_alive, bool head_only,
                                  std::string_view date);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for the Date header.
std::string HttpDate(long long unix_seconds);

const char* HttpReasonPhrase(int status);

}  // namespace ijazat::appliance
