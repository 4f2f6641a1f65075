// Hostile clients against the in-process appliance: oversized bodies (declared and chunked),
// oversized headers, deep JSON, wrong content types, invalid UTF-8, a slowloris client, many
// idle connections, and clients that vanish mid-request. Each gets a clear 4xx or a closed
// connection, and honest clients keep being served during and after.
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "appliance_fixture.h"

namespace ijazat::appliance::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

class HostileClientsTest : public ApplianceTest {
 protected:
  void SetUp() override {
    ApplianceTest::SetUp();
    StopAppliance();
    config_.server.request_timeout = std::chrono::seconds(2);
    config_.server.keep_alive_timeout = std::chrono::seconds(1);
    StartAppliance();
    context_ =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", config_.tls.certificate,
                               Poco::Net::Context::VERIFY_RELAXED, 9, false);
  }

  std::unique_ptr<Poco::Net::SecureStreamSocket> Connect() {
    auto socket = std::make_unique<Poco::Net::SecureStreamSocket>(
        Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port())),
        context_);
    socket->setReceiveTimeout(Poco::Timespan(10, 0));
    return socket;
  }

  // Sends everything, ignoring a connection the server already closed.
  static bool SendAll(Poco::Net::StreamSocket& socket, const std::string& data) {
    try {
      std::size_t sent = 0;
      while (sent < data.size()) {
        const int n = socket.sendBytes(data.data() + sent, static_cast<int>(data.size() - sent));
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  // Reads until the server closes the connection, a full response has come (when
  // `one_response`), or `timeout` passes. Returns what came.
  static std::string Receive(Poco::Net::StreamSocket& socket, std::chrono::milliseconds timeout,
                             bool* closed, bool one_response = true) {
    std::string data;
    *closed = false;
    const auto deadline = Clock::now() + timeout;
    char buffer[4096];
    while (Clock::now() < deadline) {
      try {
        socket.setReceiveTimeout(Poco::Timespan(0, 200000));
        const int n = socket.receiveBytes(buffer, sizeof buffer);
        if (n <= 0) {
          *closed = true;
          break;
        }
        data.append(buffer, static_cast<std::size_t>(n));
        if (one_response) {
          const auto end = data.find("\r\n\r\n");
          const auto length_at = data.find("Content-Length: ");
          if (end != std::string::npos && length_at != std::string::npos && length_at < end) {
            const auto length = std::stoul(data.substr(length_at + 16));
            if (data.size() >= end + 4 + length) break;
          }
        }
      } catch (const Poco::TimeoutException&) {
        continue;
      } catch (const Poco::Exception&) {
        *closed = true;  // reset
        break;
      }
    }
    return data;
  }

  static int StatusOf(const std::string& response) {
    if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
    return std::stoi(response.substr(9, 3));
  }

  std::string RequestHead(const std::string& method, const std::string& path,
                          const std::string& extra_headers) {
    return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           kBankKey + "\r\n" + extra_headers + "\r\n";
  }

  // An honest request: a consent request answered 202 within `limit`.
  void ExpectHonestServed(const char* when, double limit_seconds = 3.0) {
    const auto start = Clock::now();
    const auto created = Post(
        "/v1/consents",
        {{"cnic", kCnic}, {"purpose", "account-opening"}, {"scopes", {"name", "date_of_birth"}}});
    EXPECT_EQ(created.status, 202) << when << ": " << created.body;
    EXPECT_LT(SecondsSince(start), limit_seconds) << when;
    EXPECT_EQ(Get("/healthz", "").status, 200) << when;
  }

  Poco::Net::Context::Ptr context_;
  std::vector<std::unique_ptr<Poco::Net::StreamSocket>> plain_;
};

TEST_F(HostileClientsTest, OversizedBodies_DeclaredAndChunked_Get413) {
  {  // declared: 10 MB announced, 20 KB sent
    auto socket = Connect();
    SendAll(*socket, RequestHead("POST", "/v1/consents",
                                 "Content-Type: application/json\r\nContent-Length: 10000000\r\n") +
                         std::string(20 * 1024, ' '));
    bool closed = false;
    const std::string response = Receive(*socket, std::chrono::seconds(5), &closed);
    EXPECT_EQ(StatusOf(response), 413) << response.substr(0, 200);
  }
  {  // chunked, no length: 40 chunks of 1 KB
    auto socket = Connect();
    std::string body;
    for (int i = 0; i < 40; ++i) body += "400\r\n" + std::string(1024, ' ') + "\r\n";
    body += "0\r\n\r\n";
    SendAll(*socket,
            RequestHead("POST", "/v1/consents",
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") +
                body);
    bool closed = false;
    const std::string response = Receive(*socket, std::chrono::seconds(5), &closed);
    EXPECT_EQ(StatusOf(response), 413) << response.substr(0, 200);
  }
  {  // chunked and endless: the server answers and closes rather than reading forever
    auto socket = Connect();
    SendAll(*socket,
            RequestHead("POST", "/v1/consents",
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"));
    // 64 KB of chunks and never the last one, from this thread: a TLS connection must not be
    // written and read from two threads at once (one OpenSSL object). The server reads 16 KB,
    // answers, and drains the rest while it lingers, so these writes do not block.
    const std::string chunk = "1000\r\n" + std::string(4096, ' ') + "\r\n";
    for (int i = 0; i < 16; ++i) {
      if (!SendAll(*socket, chunk)) break;
    }
    bool closed = false;
    const std::string response = Receive(*socket, std::chrono::seconds(5), &closed);
    EXPECT_EQ(StatusOf(response), 413) << response.substr(0, 200);
  }
  ExpectHonestServed("after oversized bodies");
}

TEST_F(HostileClientsTest, OversizedHeaders_Get431OrAClosedConnection) {
  const std::vector<std::string> heads = {
      RequestHead("GET", "/healthz", "X-Filler: " + std::string(100 * 1024, 'a') + "\r\n"),
      RequestHead("GET", "/" + std::string(100 * 1024, 'a'), ""),
      RequestHead("GET", "/healthz", std::string(300 * 1024, 'b') + ": x\r\n"),
  };
  for (std::size_t i = 0; i < heads.size(); ++i) {
    auto socket = Connect();
    // Sent from this thread, then read (one OpenSSL object is not for two threads at once):
    // the server drains what it refuses while it lingers, so the write completes.
    SendAll(*socket, heads[i]);
    bool closed = false;
    const std::string response = Receive(*socket, std::chrono::seconds(5), &closed);
    const int status = StatusOf(response);
    EXPECT_TRUE((status >= 400 && status < 500) || (status == 0 && closed))
        << "case " << i << ": " << response.substr(0, 200);
  }
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "X-H-" + std::to_string(i) + ": x\r\n";
  auto socket = Connect();
  SendAll(*socket, RequestHead("GET", "/healthz", many));
  bool closed = false;
  const std::string response = Receive(*socket, std::chrono::seconds(5), &closed);
  EXPECT_TRUE(StatusOf(response) == 431 || (StatusOf(response) == 0 && closed))
      << response.substr(0, 200);
  ExpectHonestServed("after oversized headers");
}

TEST_F(HostileClientsTest, DeepJsonWrongTypesAndInvalidUtf8_Get4xx) {
  struct Case {
    std::string name, body, content_type;
    int status;
  };
  const std::string deep_object = [] {
    std::string s;
    for (int i = 0; i < 2000; ++i) s += "{\"a\":";
    s += "1";
    for (int i = 0; i < 2000; ++i) s += "}";
    return s;
  }();
  const std::vector<Case> cases = {
      {"deep arrays", std::string(8000, '[') + std::string(8000, ']'), "application/json", 400},
      {"deep objects", deep_object, "application/json", 400},
      {"unclosed deep", std::string(16000, '['), "application/json", 400},
      {"no content type", R"({"cnic":"3520212345671"})", "", 415},
      {"text/plain", R"({"cnic":"3520212345671"})", "text/plain", 415},
      {"form", "cnic=3520212345671", "application/x-www-form-urlencoded", 415},
      {"multipart", "--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415},
      {"overlong utf-8", "{\"cnic\":\"\xc0\xaf\"}", "application/json", 400},
      {"utf-16 surrogate bytes", "{\"cnic\":\"\xed\xa0\x80\"}", "application/json", 400},
      {"lone surrogate escape", R"({"cnic":"\ud800"})", "application/json", 400},
      {"nul byte", std::string("{\"cnic\":\"35202\0\"}", 17), "application/json", 400},
      {"utf-8 bom", "\xef\xbb\xbf{}", "application/json", 400},
      {"duplicate keys", R"({"cnic":"3520212345671","cnic":"4210112345673"})", "application/json",
       400},
  };
  for (const Case& c : cases) {
    const auto result = Request("POST", "/v1/consents", c.body, kBankKey, c.content_type);
    EXPECT_EQ(result.status, c.status) << c.name << ": " << result.body;
    EXPECT_TRUE(result.json.is_object() && result.json.contains("title")) << c.name;
  }
  // The gateway webhook with bytes that are not UTF-8: refused or answered, never a 5xx.
  for (const std::string& text :
       {std::string("%ff%fe%fd"), std::string("35202%c0%af1234567"), std::string("%ed%a0%80")}) {
    const auto result =
        Request("POST", "/v1/sms/inbound", "from=03001234567&to=8009&text=" + text, "",
                "application/x-www-form-urlencoded", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
    EXPECT_LT(result.status, 500) << text << ": " << result.body;
    const auto from =
        Request("POST", "/v1/sms/inbound", "from=%ff%fe&to=8009&text=HELP", "",
                "application/x-www-form-urlencoded", {{"X-Ijazat-Gateway-Secret", kGatewaySecret}});
    EXPECT_GE(from.status, 400) << from.body;
    EXPECT_LT(from.status, 500) << from.body;
  }
  ASSERT_EQ(InboundSms("03001234567", "35202-1234567-1").status, 200);
  ExpectHonestServed("after malformed bodies");
}

// The request timeout bounds the whole request, not each read: a client that sends a byte a
// second is closed once it has had its 2 s, and it never held a worker meanwhile.
TEST_F(HostileClientsTest, Slowloris_IsClosedWithinTheRequestTimeout) {
  auto slow = Connect();
  const std::string head = RequestHead("POST", "/v1/consents",
                                       "Content-Type: application/json\r\nContent-Length: 100\r\n");
  std::atomic<bool> closed{false};
  std::atomic<int> bytes{0};
  const auto start = Clock::now();
  std::thread loris([&] {
    // One byte a second, for at most 12 s.
    for (std::size_t i = 0; i < head.size() && SecondsSince(start) < 12; ++i) {
      if (!SendAll(*slow, head.substr(i, 1))) break;
      ++bytes;
      bool gone = false;
      Receive(*slow, std::chrono::milliseconds(1000), &gone, false);
      if (gone) break;
    }
    closed = true;
  });
  // Honest clients are served meanwhile.
  int honest = 0;
  while (!closed && SecondsSince(start) < 13) {
    EXPECT_EQ(Get("/healthz", "").status, 200);
    ++honest;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  loris.join();
  const double lasted = SecondsSince(start);
  EXPECT_LT(lasted, 5.0) << "a client sending one byte a second held its connection for " << lasted
                         << " s (" << bytes << " bytes) with a 2 s request timeout";
  EXPECT_GT(honest, 0);
  ExpectHonestServed("after the slowloris");
}

// Idle keep-alive connections and connections that never start TLS cost no worker: with 4
// workers and 50 such connections open, an honest client is served at once.
TEST_F(HostileClientsTest, ManyIdleConnections_DoNotStarveAnHonestClient) {
  StopAppliance();
  config_.server.threads = 4;
  StartAppliance();
  std::vector<std::unique_ptr<Poco::Net::SecureStreamSocket>> idle;
  // 25 that finished one keep-alive request and stay open, then 25 that never send a byte.
  const auto opening = Clock::now();
  for (int i = 0; i < 50; ++i) {
    try {
      if (i < 25) {
        auto socket = Connect();
        SendAll(*socket, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        bool closed = false;
        Receive(*socket, std::chrono::seconds(5), &closed);
        idle.push_back(std::move(socket));
      } else {
        auto plain = std::make_unique<Poco::Net::StreamSocket>(
            Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port())));
        plain_.push_back(std::move(plain));
      }
    } catch (const Poco::Exception& e) {
      ADD_FAILURE() << "connection " << i << ": " << e.displayText();
    }
  }
  std::cout << "[ hostile  ] 50 idle connections opened in " << SecondsSince(opening) << " s\n";
  for (int round = 0; round < 3; ++round) {
    const auto start = Clock::now();
    ExpectHonestServed("with 50 idle connections", 4.0);
    std::cout << "[ hostile  ] honest request with 50 idle connections, round " << round << ": "
              << SecondsSince(start) << " s\n";
  }
  idle.clear();
  plain_.clear();
  ExpectHonestServed("after the idle connections");
}

TEST_F(HostileClientsTest, AbruptDisconnectsMidRequest_ServerKeepsServing) {
  for (int i = 0; i < 20; ++i) {
    switch (i % 4) {
      case 0: {  // half a body, then gone
        auto socket = Connect();
        SendAll(*socket, RequestHead("POST", "/v1/consents",
                                     "Content-Type: application/json\r\nContent-Length: 200\r\n") +
                             std::string(100, ' '));
        socket->close();
        break;
      }
      case 1: {  // half the headers, then gone
        auto socket = Connect();
        SendAll(*socket, "POST /v1/consents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le");
        socket->close();
        break;
      }
      case 2: {  // TCP only, closed before the TLS handshake ends
        Poco::Net::StreamSocket plain(
            Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port())));
        plain.sendBytes("\x16\x03\x01\x00", 4);
        plain.close();
        break;
      }
      default: {  // plain HTTP to the TLS port
        Poco::Net::StreamSocket plain(
            Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(appliance_->port())));
        SendAll(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        bool closed = false;
        Receive(plain, std::chrono::seconds(3), &closed);
        EXPECT_TRUE(closed);
        break;
      }
    }
    if (i % 5 == 4) ExpectHonestServed("between abrupt disconnects");
  }
  ExpectHonestServed("after abrupt disconnects");
}

}  // namespace
}  // namespace ijazat::appliance::testing
