#include "http_message.h"

#include <ctime>

namespace ijazat::appliance {
namespace {

constexpr std::string_view kCrlf = "\r\n";

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// field-value characters: VCHAR, SP, HTAB and obs-text; no other control character.
bool IsFieldValue(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// request-target in origin-form: '/' then visible ASCII (no space, no control, no obs-text).
bool IsOriginForm(std::string_view target) {
  if (target.empty() || target[0] != '/') return false;
  for (const char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

HttpParse Invalid(int status, std::string message) {
  HttpParse parse;
  parse.state = HttpParse::State::kInvalid;
  parse.status = status;
  parse.message = std::move(message);
  return parse;
}

// Fields that must appear at most once: a second copy is how requests get smuggled or
// credentials confused.
bool MustBeSingle(std::string_view name) {
  for (const std::string_view single :
       {"content-length", "transfer-encoding", "host", "authorization", "content-type",
        "x-ijazat-gateway-secret"}) {
    if (EqualsNoCase(name, single)) return true;
  }
  return false;
}

bool HasToken(std::string_view list, std::string_view token) {
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (EqualsNoCase(Trim(list.substr(start, comma - start)), token)) return true;
    start = comma + 1;
  }
  return false;
}

enum class Chunked { kIncomplete, kComplete, kTooLarge, kInvalid };

// Decodes a chunked body starting at `data`; on kComplete `*consumed` covers the trailer.
Chunked DecodeChunked(std::string_view data, const HttpLimits& limits, std::string* body,
                      std::size_t* consumed) {
  body->clear();
  std::size_t at = 0;
  while (true) {
    const std::size_t eol = data.find(kCrlf, at);
    if (eol == std::string_view::npos) {
      return data.size() - at > 1024 ? Chunked::kInvalid : Chunked::kIncomplete;
    }
    std::string_view line = data.substr(at, eol - at);
    if (line.size() > 1024) return Chunked::kInvalid;
    const std::size_t semicolon = line.find(';');
    if (semicolon != std::string_view::npos) line = line.substr(0, semicolon);
    line = Trim(line);
    if (line.empty() || line.size() > 8) return Chunked::kInvalid;
    std::size_t size = 0;
    for (const char c : line) {
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) return Chunked::kInvalid;
      size = size * 16 + static_cast<std::size_t>(digit);
    }
    at = eol + 2;
    if (size == 0) break;
    if (body->size() + size > limits.max_body_bytes) return Chunked::kTooLarge;
    if (data.size() < at + size + 2) return Chunked::kIncomplete;
    if (data.substr(at + size, 2) != kCrlf) return Chunked::kInvalid;
    body->append(data.substr(at, size));
    at += size + 2;
  }
  // Trailer fields (ignored), then the empty line.
  std::size_t trailer_bytes = 0;
  while (true) {
    const std::size_t eol = data.find(kCrlf, at);
    if (eol == std::string_view::npos) {
      return data.size() - at > 4096 ? Chunked::kInvalid : Chunked::kIncomplete;
    }
    trailer_bytes += eol - at + 2;
    if (trailer_bytes > 4096) return Chunked::kInvalid;
    const bool last = eol == at;
    at = eol + 2;
    if (last) break;
  }
  *consumed = at;
  return Chunked::kComplete;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsNoCase(key, name)) return &value;
  }
  return nullptr;
}

std::string HttpRequest::MediaType() const {
  const std::string* type = Header("Content-Type");
  if (type == nullptr) return "";
  std::string_view media = *type;
  media = Trim(media.substr(0, media.find(';')));
  std::string lowered(media);
  for (char& c : lowered) c = Lower(c);
  return lowered;
}

std::string_view HttpRequest::Path() const {
  std::string_view path = target;
  return path.substr(0, path.find_first_of("?#"));
}

std::string_view HttpRequest::RawQuery() const {
  std::string_view rest = target;
  const std::size_t question = rest.find('?');
  if (question == std::string_view::npos) return {};
  rest = rest.substr(question + 1);
  return rest.substr(0, rest.find('#'));
}

HttpParse ParseHttpRequest(std::string_view data, const HttpLimits& limits, HttpRequest* request) {
  // RFC 9112 2.2: ignore empty lines before the request line.
  std::size_t start = 0;
  while (data.substr(start, 2) == kCrlf) start += 2;
  if (start > 64) return Invalid(400, "too many empty lines before the request");

  // Lines end with CRLF: a bare LF would leave the request incomplete for ever.
  const std::size_t header_part_end = std::min(data.find("\r\n\r\n", start), data.size());
  for (std::size_t i = data.find('\n', start); i < header_part_end; i = data.find('\n', i + 1)) {
    if (i == 0 || data[i - 1] != '\r') return Invalid(400, "lines must end with CRLF");
  }
  const std::size_t line_end = data.find(kCrlf, start);
  if (line_end == std::string_view::npos) {
    // A CR at the very end may be the start of the line's CRLF.
    const std::size_t pending =
        data.size() - start - (data.size() > start && data.back() == '\r' ? 1 : 0);
    if (pending > limits.max_request_line) {
      return Invalid(414, "the request line is too long");
    }
    if (data.size() - start > limits.max_header_bytes) {
      return Invalid(431, "the request header section is too large");
    }
    return {};
  }
  if (line_end - start > limits.max_request_line) {
    return Invalid(414, "the request line is too long");
  }
  const std::size_t header_end = data.find("\r\n\r\n", line_end);
  // The header section ends with the request line when no field follows.
  const std::size_t section_end = data.substr(line_end, 4) == "\r\n\r\n" ? line_end : header_end;
  if (section_end == std::string_view::npos) {
    if (data.size() - start > limits.max_header_bytes) {
      return Invalid(431, "the request header section is too large");
    }
    return {};
  }
  if (section_end + 4 - start > limits.max_header_bytes) {
    return Invalid(431, "the request header section is too large");
  }

  // Request line: method SP request-target SP HTTP-version.
  const std::string_view line = data.substr(start, line_end - start);
  const std::size_t first_space = line.find(' ');
  const std::size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return Invalid(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  const std::string_view version = line.substr(last_space + 1);
  if (!IsToken(method)) return Invalid(400, "malformed request method");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Invalid(400, "malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Invalid(505, "only HTTP/1.0 and HTTP/1.1 are served");
  }
  if (!IsOriginForm(target)) return Invalid(400, "the request target must be a path");

  HttpRequest parsed;
  parsed.method = std::string(method);
  parsed.target = std::string(target);
  parsed.minor_version = version[7] - '0';

  // Header fields.
  std::size_t at = line_end + 2;
  while (at < section_end + 2) {
    const std::size_t eol = data.find(kCrlf, at);
    const std::string_view field = data.substr(at, eol - at);
    at = eol + 2;
    if (field.front() == ' ' || field.front() == '\t') {
      return Invalid(400, "folded header lines are not accepted");
    }
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return Invalid(400, "a header line has no colon");
    const std::string_view name = field.substr(0, colon);
    const std::string_view value = Trim(field.substr(colon + 1));
    if (!IsToken(name)) return Invalid(400, "malformed header name");
    if (!IsFieldValue(value)) return Invalid(400, "a header value holds a control character");
    if (parsed.headers.size() >= limits.max_header_fields) {
      return Invalid(431, "too many header fields");
    }
    if (MustBeSingle(name) && parsed.HasHeader(name)) {
      return Invalid(400, "the " + std::string(name) + " header appears more than once");
    }
    parsed.headers.emplace_back(std::string(name), std::string(value));
  }
  const std::size_t body_start = section_end + 4;

  if (parsed.minor_version == 1 && !parsed.HasHeader("Host")) {
    return Invalid(400, "HTTP/1.1 requests need a Host header");
  }
  const std::string* connection = parsed.Header("Connection");
  if (parsed.minor_version == 0) {
    parsed.keep_alive = connection != nullptr && HasToken(*connection, "keep-alive");
  } else {
    parsed.keep_alive = connection == nullptr || !HasToken(*connection, "close");
  }

  HttpParse parse;
  // RFC 9110 10.1.1: an HTTP/1.0 client's Expect is ignored.
  const std::string* expect = parsed.minor_version == 0 ? nullptr : parsed.Header("Expect");
  if (expect != nullptr && !EqualsNoCase(*expect, "100-continue")) {
    return Invalid(417, "only \"Expect: 100-continue\" is understood");
  }
  const std::string* transfer_encoding = parsed.Header("Transfer-Encoding");
  const std::string* content_length = parsed.Header("Content-Length");
  if (transfer_encoding != nullptr) {
    if (content_length != nullptr) {
      return Invalid(400, "a request may not carry both Content-Length and Transfer-Encoding");
    }
    if (parsed.minor_version == 0) return Invalid(400, "HTTP/1.0 has no transfer codings");
    if (!EqualsNoCase(*transfer_encoding, "chunked")) {
      return Invalid(501, "only the chunked transfer coding is accepted");
    }
    std::size_t chunked_bytes = 0;
    switch (DecodeChunked(data.substr(body_start), limits, &parsed.body, &chunked_bytes)) {
      case Chunked::kIncomplete:
        parse.expect_continue = expect != nullptr;
        return parse;
      case Chunked::kTooLarge:
        return Invalid(
            413, "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
      case Chunked::kInvalid:
        return Invalid(400, "malformed chunked body");
      case Chunked::kComplete:
        break;
    }
    parse.consumed = body_start + chunked_bytes;
  } else {
    std::size_t length = 0;
    if (content_length != nullptr) {
      if (content_length->empty() || content_length->size() > 18 ||
          content_length->find_first_not_of("0123456789") != std::string::npos) {
        return Invalid(400, "malformed Content-Length");
      }
      length = std::stoull(*content_length);
    }
    if (length > limits.max_body_bytes) {
      return Invalid(413,
                     "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    }
    if (data.size() - body_start < length) {
      parse.expect_continue = expect != nullptr;
      return parse;
    }
    parsed.body = std::string(data.substr(body_start, length));
    parse.consumed = body_start + length;
  }
  parse.state = HttpParse::State::kComplete;
  parsed.client_address = std::move(request->client_address);
  parsed.client_loopback = request->client_loopback;
  parsed.peer_certificate_sha256 = std::move(request->peer_certificate_sha256);
  *request = std::move(parsed);
  return parse;
}

const char* HttpReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string HttpDate(long long unix_seconds) {
  const auto seconds = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return buffer;
}

std::string SerializeHttpResponse(const HttpResponse& response, bool keep_alive, bool head_only,
                                  std::string_view date) {
  std::string out;
  out.reserve(256 + response.body.size());
  out.append("HTTP/1.1 ")
      .append(std::to_string(response.status))
      .append(" ")
      .append(HttpReasonPhrase(response.status))
      .append("\r\nDate: ")
      .append(date)
      .append("\r\nServer: ijazat\r\n");
  for (const auto& [name, value] : response.headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  const bool no_content = response.status == 204;  // RFC 9110 8.6: no Content-Length
  if (!no_content) {
    out.append("Content-Length: ").append(std::to_string(response.body.size())).append("\r\n");
  }
  out.append(keep_alive && !response.close ? "Connection: keep-alive\r\n"
                                           : "Connection: close\r\n");
  out.append("\r\n");
  if (!head_only && !no_content) out.append(response.body);
  return out;
}

}  // namespace ijazat::appliance
