// The HTTP/1.1 request parser and response serializer on their own: framing, incremental
// input split at every byte, pipelining, chunked bodies, every rejection with its exact
// status, keep-alive rules and the accessors.
#include "http_message.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace ijazat::appliance {
namespace {

using State = HttpParse::State;

struct Parsed {
  HttpParse parse;
  HttpRequest request;
};

Parsed Parse(std::string_view data, const HttpLimits& limits = HttpLimits{}) {
  Parsed parsed;
  parsed.parse = ParseHttpRequest(data, limits, &parsed.request);
  return parsed;
}

// Expects `data` to be rejected with `status`.
void ExpectInvalid(std::string_view data, int status, const HttpLimits& limits = HttpLimits{}) {
  const Parsed parsed = Parse(data, limits);
  EXPECT_EQ(parsed.parse.state, State::kInvalid) << ::testing::PrintToString(std::string(data));
  EXPECT_EQ(parsed.parse.status, status) << ::testing::PrintToString(std::string(data));
  if (parsed.parse.state == State::kInvalid) {
    EXPECT_FALSE(parsed.parse.message.empty());
  }
}

// Every proper prefix of `message` is incomplete; the whole of it is complete and consumed.
void ExpectIncompleteUntilLastByte(const std::string& message,
                                   const HttpLimits& limits = HttpLimits{}) {
  for (std::size_t i = 0; i < message.size(); ++i) {
    const Parsed prefix = Parse(std::string_view(message).substr(0, i), limits);
    ASSERT_EQ(prefix.parse.state, State::kIncomplete)
        << "prefix of " << i << " bytes: " << ::testing::PrintToString(message.substr(0, i))
        << " status " << prefix.parse.status << " " << prefix.parse.message;
  }
  const Parsed whole = Parse(message, limits);
  ASSERT_EQ(whole.parse.state, State::kComplete) << whole.parse.message;
  EXPECT_EQ(whole.parse.consumed, message.size());
}

constexpr std::string_view kGet = "GET /v1/healthz HTTP/1.1\r\nHost: ijazat.test\r\n\r\n";
constexpr std::string_view kPost =
    "POST /v1/consents HTTP/1.1\r\nHost: ijazat.test\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\n\r\n{\"a\":\"hello\"}";
constexpr std::string_view kChunked =
    "POST /v1/consents HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value;other\r\nhello\r\n"
    "6\r\n world\r\n"
    "A\r\n0123456789\r\n"
    "0\r\n"
    "X-Trailer: yes\r\n"
    "X-Other: too\r\n"
    "\r\n";

// --- Complete requests -----------------------------------------------------------------------

TEST(HttpParserTest, CompleteGetIsParsed) {
  const Parsed parsed = Parse(kGet);
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.parse.consumed, kGet.size());
  EXPECT_FALSE(parsed.parse.expect_continue);
  EXPECT_EQ(parsed.request.method, "GET");
  EXPECT_EQ(parsed.request.target, "/v1/healthz");
  EXPECT_EQ(parsed.request.minor_version, 1);
  ASSERT_EQ(parsed.request.headers.size(), 1u);
  EXPECT_EQ(parsed.request.headers[0].first, "Host");
  EXPECT_EQ(parsed.request.headers[0].second, "ijazat.test");
  EXPECT_TRUE(parsed.request.body.empty());
  EXPECT_TRUE(parsed.request.keep_alive);
}

TEST(HttpParserTest, PostWithContentLengthBodyIsParsed) {
  const Parsed parsed = Parse(kPost);
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.parse.consumed, kPost.size());
  EXPECT_EQ(parsed.request.method, "POST");
  EXPECT_EQ(parsed.request.body, "{\"a\":\"hello\"}");
}

TEST(HttpParserTest, ContentLengthBodySplitAtEveryByteIsIncompleteUntilTheLastByte) {
  ExpectIncompleteUntilLastByte(std::string(kPost));
  EXPECT_EQ(Parse(kPost).request.body, "{\"a\":\"hello\"}");
}

TEST(HttpParserTest, GetSplitAtEveryByteIsIncompleteUntilTheLastByte) {
  ExpectIncompleteUntilLastByte(std::string(kGet));
}

TEST(HttpParserTest, HeaderValuesAreTrimmedAndNamesKeptAsSent) {
  const Parsed parsed = Parse(
      "GET / HTTP/1.1\r\nHost:a\r\nX-Thing: \t value  with  spaces \t \r\n"
      "X-Empty:\r\n\r\n");
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  ASSERT_EQ(parsed.request.headers.size(), 3u);
  EXPECT_EQ(parsed.request.headers[0].second, "a");
  EXPECT_EQ(parsed.request.headers[1].first, "X-Thing");
  EXPECT_EQ(parsed.request.headers[1].second, "value  with  spaces");
  EXPECT_EQ(parsed.request.headers[2].second, "");
}

TEST(HttpParserTest, EmptyLinesBeforeTheRequestLineAreSkippedAndConsumed) {
  const std::string data = "\r\n\r\n" + std::string(kGet);
  const Parsed parsed = Parse(data);
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.parse.consumed, data.size());
  EXPECT_EQ(parsed.request.target, "/v1/healthz");
}

TEST(HttpParserTest, ConnectionFactsOnTheRequestSurviveParsing) {
  HttpRequest request;
  request.client_address = "192.0.2.7";
  request.client_loopback = true;
  request.peer_certificate_sha256 = std::string(32, 'x');
  const HttpParse parse = ParseHttpRequest(kPost, HttpLimits{}, &request);
  ASSERT_EQ(parse.state, State::kComplete);
  EXPECT_EQ(request.client_address, "192.0.2.7");
  EXPECT_TRUE(request.client_loopback);
  EXPECT_EQ(request.peer_certificate_sha256, std::string(32, 'x'));
  EXPECT_EQ(request.method, "POST");
}

TEST(HttpParserTest, TwoPipelinedRequestsAreParsedOneAfterAnother) {
  const std::string data = std::string(kPost) + std::string(kGet);
  const Parsed first = Parse(data);
  ASSERT_EQ(first.parse.state, State::kComplete) << first.parse.message;
  EXPECT_EQ(first.parse.consumed, kPost.size());
  EXPECT_EQ(first.request.method, "POST");
  EXPECT_EQ(first.request.body, "{\"a\":\"hello\"}");

  const Parsed second = Parse(std::string_view(data).substr(first.parse.consumed));
  ASSERT_EQ(second.parse.state, State::kComplete) << second.parse.message;
  EXPECT_EQ(second.parse.consumed, kGet.size());
  EXPECT_EQ(second.request.method, "GET");
  EXPECT_EQ(second.request.target, "/v1/healthz");
  EXPECT_TRUE(second.request.body.empty());
}

TEST(HttpParserTest, PipelinedRequestAfterBodylessHttp10RequestIsLeftUnconsumed) {
  const std::string first = "GET /one HTTP/1.0\r\n\r\n";
  const Parsed parsed = Parse(first + std::string(kGet));
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.parse.consumed, first.size());
  EXPECT_EQ(parsed.request.target, "/one");
  EXPECT_EQ(parsed.request.minor_version, 0);
}

// --- Chunked bodies --------------------------------------------------------------------------

TEST(HttpParserTest, ChunkedBodyIsDecodedWithExtensionsAndTrailers) {
  const std::string pipelined = std::string(kChunked) + std::string(kGet);
  const Parsed parsed = Parse(pipelined);
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.parse.consumed, kChunked.size());
  EXPECT_EQ(parsed.request.body, "hello world0123456789");
  // Trailer fields are not merged into the header fields.
  EXPECT_FALSE(parsed.request.HasHeader("X-Trailer"));
}

TEST(HttpParserTest, ChunkedBodySplitAtEveryByteIsIncompleteUntilTheLastByte) {
  ExpectIncompleteUntilLastByte(std::string(kChunked));
  EXPECT_EQ(Parse(kChunked).request.body, "hello world0123456789");
}

TEST(HttpParserTest, MalformedChunkSizeIsRejected) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ExpectInvalid(head + "zz\r\nhello\r\n0\r\n\r\n", 400);
  ExpectInvalid(head + "\r\nhello\r\n0\r\n\r\n", 400);
  ExpectInvalid(head + "-5\r\nhello\r\n0\r\n\r\n", 400);
  // Chunk data not followed by CRLF.
  ExpectInvalid(head + "5\r\nhelloX\r\n0\r\n\r\n", 400);
}

TEST(HttpParserTest, ChunkedBodyOverTheLimitIs413) {
  HttpLimits limits;
  limits.max_body_bytes = 8;
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  // Two chunks that add up past the limit.
  ExpectInvalid(head + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 413, limits);
  // A single declared chunk past the limit is refused before its data arrives.
  ExpectInvalid(head + "ffffff\r\n", 413, limits);
  // Exactly at the limit is fine.
  const Parsed at_limit = Parse(head + "8\r\n12345678\r\n0\r\n\r\n", limits);
  ASSERT_EQ(at_limit.parse.state, State::kComplete) << at_limit.parse.message;
  EXPECT_EQ(at_limit.request.body, "12345678");
}

// --- Rejections ------------------------------------------------------------------------------

TEST(HttpParserTest, BareLfLineEndingsAreRejected) {
  // A whole request with LF-only line endings: the strict parser must answer 400 rather than
  // wait for a CRLF that never comes.
  ExpectInvalid("GET / HTTP/1.1\nHost: a\n\n", 400);
}

TEST(HttpParserTest, BareLfEndingTheHeaderSectionIsRejected) {
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\n\n", 400);
}

TEST(HttpParserTest, BareLfInsideTheHeaderSectionIsRejected) {
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\nX-Smuggled: b\r\n\r\n", 400);
  ExpectInvalid("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(HttpParserTest, Http11WithoutHostIs400) {
  ExpectInvalid("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.1\r\n\r\n", 400);
}

TEST(HttpParserTest, Http10WithoutHostIsAccepted) {
  const Parsed parsed = Parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.request.minor_version, 0);
}

TEST(HttpParserTest, UnsupportedHttpVersionsAre505) {
  ExpectInvalid("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
  ExpectInvalid("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
  ExpectInvalid("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
}

TEST(HttpParserTest, MalformedHttpVersionsAre400) {
  ExpectInvalid("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/x.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET /\r\nHost: a\r\n\r\n", 400);
}

TEST(HttpParserTest, MalformedMethodIs400) {
  ExpectInvalid("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid(" / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(HttpParserTest, TargetsOtherThanOriginFormAre400) {
  ExpectInvalid("GET http://ijazat.test/ HTTP/1.1\r\nHost: ijazat.test\r\n\r\n", 400);
  ExpectInvalid("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("CONNECT ijazat.test:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(HttpParserTest, SpaceOrControlCharacterInTargetIs400) {
  ExpectInvalid("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400);
  ExpectInvalid(std::string("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  ExpectInvalid(std::string("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(HttpParserTest, ControlCharacterInHeaderValueIs400) {
  ExpectInvalid(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n"), 400);
  ExpectInvalid(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n"), 400);
  ExpectInvalid(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a") + '\0' + "z\r\n\r\n", 400);
  ExpectInvalid(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\rz\r\n\r\n"), 400);
}

TEST(HttpParserTest, TabAndObsTextInHeaderValueAreAccepted) {
  const Parsed parsed = Parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xc3\xa9\r\n\r\n");
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(*parsed.request.Header("X"), "a\tb\xc3\xa9");
}

TEST(HttpParserTest, ObsFoldIs400) {
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n", 400);
  // Whitespace before the first field is a fold as well.
  ExpectInvalid("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
}

TEST(HttpParserTest, HeaderWithoutColonIs400) {
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", 400);
}

TEST(HttpParserTest, MalformedHeaderNameIs400) {
  ExpectInvalid("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400);
}

TEST(HttpParserTest, DuplicateSingletonFieldsAre400) {
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx",
                400);
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
                400);
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  ExpectInvalid("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nAUTHORIZATION: y\r\n\r\n", 400);
  ExpectInvalid(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
      "\r\n\r\n0\r\n\r\n",
      400);
}

TEST(HttpParserTest, RepeatableFieldsMayAppearTwice) {
  const Parsed parsed = Parse("GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\nAccept: y\r\n\r\n");
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(*parsed.request.Header("accept"), "x");  // the first one
}

TEST(HttpParserTest, BothContentLengthAndTransferEncodingIs400) {
  ExpectInvalid(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      400);
  ExpectInvalid(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n",
      400);
}

TEST(HttpParserTest, TransferCodingsOtherThanChunkedAre501) {
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
}

TEST(HttpParserTest, TransferEncodingOnHttp10Is400) {
  ExpectInvalid("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
}

TEST(HttpParserTest, MalformedContentLengthIs400) {
  const auto request = [](const std::string& length) {
    return "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + length + "\r\n\r\nxxxxx";
  };
  ExpectInvalid(request("+5"), 400);
  ExpectInvalid(request("-5"), 400);
  ExpectInvalid(request("5 5"), 400);
  ExpectInvalid(request("5,5"), 400);
  ExpectInvalid(request("0x5"), 400);
  ExpectInvalid(request("5.0"), 400);
  ExpectInvalid(request(""), 400);
  ExpectInvalid(request("99999999999999999999999"), 400);  // would overflow
}

TEST(HttpParserTest, ContentLengthWithSurroundingWhitespaceIsAccepted) {
  // Optional whitespace around a field value is not part of the value.
  const Parsed parsed = Parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\n\r\nhello");
  ASSERT_EQ(parsed.parse.state, State::kComplete) << parsed.parse.message;
  EXPECT_EQ(parsed.request.body, "hello");
}

TEST(HttpParserTest, DeclaredBodyOverTheLimitIs413) {
  HttpLimits limits;
  limits.max_body_bytes = 10;
  // Refused from the header section alone, before the body is sent.
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 413, limits);
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", 413,
                limits);
  const Parsed at_limit =
      Parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits);
  EXPECT_EQ(at_limit.parse.state, State::kComplete) << at_limit.parse.message;
}

TEST(HttpParserTest, HeaderSectionOverTheLimitIs431) {
  HttpLimits limits;
  limits.max_header_bytes = 128;
  const std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200, 'b');
  // Complete and still arriving.
  ExpectInvalid(big + "\r\n\r\n", 431, limits);
  ExpectInvalid(big, 431, limits);
  // Just inside the limit (the section counts its final CRLFCRLF).
  std::string fits = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ";
  fits += std::string(128 - fits.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 128u);
  EXPECT_EQ(Parse(fits, limits).parse.state, State::kComplete);
  ExpectInvalid(fits.substr(0, fits.size() - 4) + "b\r\n\r\n", 431, limits);
}

TEST(HttpParserTest, TooManyHeaderFieldsIs431) {
  HttpLimits limits;
  limits.max_header_fields = 4;
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
  EXPECT_EQ(Parse(request + "\r\n", limits).parse.state, State::kComplete);
  ExpectInvalid(request + "D: 4\r\n\r\n", 431, limits);
}

TEST(HttpParserTest, RequestLineOverTheLimitIs414) {
  HttpLimits limits;
  limits.max_request_line = 32;
  const std::string line = "GET /" + std::string(40, 'a') + " HTTP/1.1";
  ExpectInvalid(line + "\r\nHost: a\r\n\r\n", 414, limits);
  // Still arriving: refused as soon as it is longer than the limit.
  ExpectInvalid(line, 414, limits);
}

TEST(HttpParserTest, RequestLineExactlyAtTheLimitIsAcceptedHoweverItIsSplit) {
  HttpLimits limits;
  limits.max_request_line = 32;
  const std::string line = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line.size(), 32u);
  const std::string request = line + "\r\nHost: a\r\n\r\n";
  EXPECT_EQ(Parse(request, limits).parse.state, State::kComplete);
  // The same request arriving a byte at a time must never be refused on the way.
  ExpectIncompleteUntilLastByte(request, limits);
}

TEST(HttpParserTest, ExpectationOtherThan100ContinueIs417) {
  ExpectInvalid("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi", 417);
  ExpectInvalid(
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\nContent-Length: 2\r\n\r\nhi", 417);
}

TEST(HttpParserTest, Expect100ContinueIsReportedWhileTheBodyIsMissing) {
  const std::string head =
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
  // Header section incomplete: nothing to report yet.
  const Parsed partial_head = Parse(head.substr(0, head.size() - 2));
  EXPECT_EQ(partial_head.parse.state, State::kIncomplete);
  EXPECT_FALSE(partial_head.parse.expect_continue);

  const Parsed waiting = Parse(head);
  EXPECT_EQ(waiting.parse.state, State::kIncomplete);
  EXPECT_TRUE(waiting.parse.expect_continue);

  const Parsed some = Parse(head + "he");
  EXPECT_EQ(some.parse.state, State::kIncomplete);
  EXPECT_TRUE(some.parse.expect_continue);

  const Parsed whole = Parse(head + "hello");
  ASSERT_EQ(whole.parse.state, State::kComplete);
  EXPECT_EQ(whole.request.body, "hello");
}

TEST(HttpParserTest, Expect100ContinueIsReportedForChunkedBodies) {
  const Parsed waiting = Parse(
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(waiting.parse.state, State::kIncomplete);
  EXPECT_TRUE(waiting.parse.expect_continue);
}

TEST(HttpParserTest, Expect100ContinueIsIgnoredOnHttp10) {
  // RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request
  // (a 1.0 client does not understand an interim 100 response).
  const Parsed waiting =
      Parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(waiting.parse.state, State::kIncomplete);
  EXPECT_FALSE(waiting.parse.expect_continue);
}

// --- Keep-alive ------------------------------------------------------------------------------

bool KeepAlive(const std::string& request) {
  const Parsed parsed = Parse(request);
  EXPECT_EQ(parsed.parse.state, State::kComplete) << request << parsed.parse.message;
  return parsed.request.keep_alive;
}

TEST(HttpParserTest, Http11KeepsAliveUnlessConnectionClose) {
  EXPECT_TRUE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_TRUE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_TRUE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"));
  EXPECT_FALSE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"));
  EXPECT_FALSE(KeepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo ,  Close \r\n\r\n"));
}

TEST(HttpParserTest, Http10ClosesUnlessConnectionKeepAlive) {
  EXPECT_FALSE(KeepAlive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_FALSE(KeepAlive("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(KeepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_TRUE(KeepAlive("GET / HTTP/1.0\r\nConnection: x-foo, keep-alive\r\n\r\n"));
}

// --- Accessors -------------------------------------------------------------------------------

TEST(HttpRequestTest, HeaderLookupIsCaseInsensitive) {
  const Parsed parsed =
      Parse("GET / HTTP/1.1\r\nHost: a\r\nX-Ijazat-Thing: v1\r\nx-ijazat-thing2: v2\r\n\r\n");
  ASSERT_EQ(parsed.parse.state, State::kComplete);
  ASSERT_NE(parsed.request.Header("x-ijazat-thing"), nullptr);
  EXPECT_EQ(*parsed.request.Header("x-ijazat-thing"), "v1");
  EXPECT_EQ(*parsed.request.Header("X-IJAZAT-THING"), "v1");
  EXPECT_EQ(*parsed.request.Header("X-Ijazat-Thing2"), "v2");
  EXPECT_TRUE(parsed.request.HasHeader("HOST"));
  EXPECT_EQ(parsed.request.Header("X-Ijazat-Thin"), nullptr);
  EXPECT_FALSE(parsed.request.HasHeader("Content-Type"));
}

TEST(HttpRequestTest, MediaTypeIsLowerCasedWithoutParameters) {
  HttpRequest request;
  EXPECT_EQ(request.MediaType(), "");
  request.headers = {{"content-type", "Application/JSON; charset=UTF-8"}};
  EXPECT_EQ(request.MediaType(), "application/json");
  request.headers = {{"Content-Type", "text/Plain ;q=1"}};
  EXPECT_EQ(request.MediaType(), "text/plain");
  request.headers = {{"Content-Type", "application/problem+json"}};
  EXPECT_EQ(request.MediaType(), "application/problem+json");
}

TEST(HttpRequestTest, PathAndRawQuerySplitTheTarget) {
  HttpRequest request;
  request.target = "/v1/consents?cnic=1&x=%20y";
  EXPECT_EQ(request.Path(), "/v1/consents");
  EXPECT_EQ(request.RawQuery(), "cnic=1&x=%20y");
  request.target = "/v1/consents";
  EXPECT_EQ(request.Path(), "/v1/consents");
  EXPECT_EQ(request.RawQuery(), "");
  request.target = "/a?";
  EXPECT_EQ(request.Path(), "/a");
  EXPECT_EQ(request.RawQuery(), "");
  request.target = "/a?q=1#frag";
  EXPECT_EQ(request.Path(), "/a");
  EXPECT_EQ(request.RawQuery(), "q=1");
  request.target = "/a#frag?not-query";
  EXPECT_EQ(request.Path(), "/a");
}

// --- Responses -------------------------------------------------------------------------------

TEST(HttpResponseTest, SerializeAddsContentLengthAndKeepAlive) {
  HttpResponse response;
  response.status = 201;
  response.headers = {{"Content-Type", "application/json"}, {"X-Request-Id", "r1"}};
  response.body = "{\"ok\":true}";
  EXPECT_EQ(SerializeHttpResponse(response, true, false, "Sun, 06 Nov 1994 08:49:37 GMT"),
            "HTTP/1.1 201 Created\r\n"
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Server: ijazat\r\n"
            "Content-Type: application/json\r\n"
            "X-Request-Id: r1\r\n"
            "Content-Length: 11\r\n"
            "Connection: keep-alive\r\n"
            "\r\n"
            "{\"ok\":true}");
}

TEST(HttpResponseTest, SerializeSaysConnectionCloseWhenNotKeptAlive) {
  HttpResponse response;
  response.body = "x";
  const std::string not_kept = SerializeHttpResponse(response, false, false, "D");
  EXPECT_NE(not_kept.find("\r\nConnection: close\r\n"), std::string::npos) << not_kept;
  EXPECT_EQ(not_kept.find("keep-alive"), std::string::npos) << not_kept;

  response.close = true;
  const std::string closing = SerializeHttpResponse(response, true, false, "D");
  EXPECT_NE(closing.find("\r\nConnection: close\r\n"), std::string::npos) << closing;
  EXPECT_EQ(closing.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << closing;
}

TEST(HttpResponseTest, SerializeForHeadOmitsTheBodyButKeepsItsLength) {
  HttpResponse response;
  response.body = "hello";
  const std::string head = SerializeHttpResponse(response, true, true, "D");
  EXPECT_NE(head.find("\r\nContent-Length: 5\r\n"), std::string::npos) << head;
  ASSERT_GE(head.size(), 4u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << head;
  EXPECT_EQ(head.find("hello"), std::string::npos) << head;
}

TEST(HttpResponseTest, SerializeEmptyBodyHasContentLengthZero) {
  HttpResponse response;
  response.status = 404;
  const std::string out = SerializeHttpResponse(response, true, false, "D");
  EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\r\nContent-Length: 0\r\n"), std::string::npos) << out;
}

TEST(HttpResponseTest, NoContentResponseCarriesNoContentLength) {
  // RFC 9110 8.6: a server MUST NOT send Content-Length in a 204 response.
  HttpResponse response;
  response.status = 204;
  const std::string out = SerializeHttpResponse(response, true, false, "D");
  EXPECT_EQ(out.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
}

TEST(HttpResponseTest, ReasonPhrasesForTheStatusesTheFrontEndSends) {
  EXPECT_STREQ(HttpReasonPhrase(100), "Continue");
  EXPECT_STREQ(HttpReasonPhrase(413), "Content Too Large");
  EXPECT_STREQ(HttpReasonPhrase(414), "URI Too Long");
  EXPECT_STREQ(HttpReasonPhrase(417), "Expectation Failed");
  EXPECT_STREQ(HttpReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(HttpReasonPhrase(501), "Not Implemented");
  EXPECT_STREQ(HttpReasonPhrase(503), "Service Unavailable");
  EXPECT_STREQ(HttpReasonPhrase(505), "HTTP Version Not Supported");
}

TEST(HttpDateTest, FormatsImfFixdate) {
  EXPECT_EQ(HttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(HttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(HttpDate(1767225599), "Wed, 31 Dec 2025 23:59:59 GMT");
}

}  // namespace
}  // namespace ijazat::appliance
