// The HTTPS front end over real TLS on a loopback port: keep-alive, pipelining, 100-continue,
// framing errors, deadlines (slow clients, idle keep-alive, silent TCP), connection and queue
// limits, draining on Stop, and the client certificate digest handed to the handler.
#include "https_front.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/temp_dir.h"

namespace ijazat::appliance {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out.push_back(kDigits[(static_cast<unsigned char>(c) >> 4) & 0xf]);
    out.push_back(kDigits[static_cast<unsigned char>(c) & 0xf]);
  }
  return out;
}

// Polls `condition` until it holds or `timeout` passes (a wait, not an assertion).
bool WaitFor(const std::function<bool()>& condition, milliseconds timeout = milliseconds(3000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

// A gate handlers wait at until the test opens it; also counts the handlers that reached it.
class Gate {
 public:
  void Pass() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++arrived_;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(10), [this] { return open_; });
  }
  bool WaitArrived(int count, milliseconds timeout = milliseconds(3000)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return arrived_ >= count; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  bool open_ = false;
};

// Opens a gate when it goes out of scope, so a failed assertion does not leave a worker (and
// a Stop waiting for it) blocked.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.Open(); }
};

struct Response {
  int status = 0;
  std::string head;  // status line and fields, without the final CRLFCRLF
  std::string body;

  // The value of the first field `name` (case-sensitive, as the serializer writes it).
  std::optional<std::string> Header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    const auto at = head.find(key);
    if (at == std::string::npos) return std::nullopt;
    const auto start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// A client connection, TLS or plain TCP, that reads whole responses.
class Client {
 public:
  explicit Client(std::unique_ptr<Poco::Net::StreamSocket> socket) : socket_(std::move(socket)) {}

  bool Send(const std::string& data) {
    try {
      std::size_t sent = 0;
      while (sent < data.size()) {
        const int n = socket_->sendBytes(data.data() + sent, static_cast<int>(data.size() - sent));
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  // The next whole response, or nullopt when the connection closed or `timeout` passed first.
  // `head_only` for the response to a HEAD request (Content-Length without a body).
  std::optional<Response> Read(milliseconds timeout = milliseconds(3000), bool head_only = false) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (auto response = Extract(head_only)) return response;
      if (closed_ || Clock::now() >= deadline) return std::nullopt;
      ReceiveSome(milliseconds(50));
    }
  }

  // True when the server closes the connection within `timeout`; data that arrives meanwhile
  // is kept for Read().
  bool WaitClosed(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && Clock::now() < deadline) ReceiveSome(milliseconds(20));
    return closed_;
  }

  bool closed() const { return closed_; }
  const std::string& buffered() const { return buffer_; }
  Poco::Net::StreamSocket& socket() { return *socket_; }

 private:
  void ReceiveSome(milliseconds wait) {
    char data[4096];
    try {
      socket_->setReceiveTimeout(Poco::Timespan(static_cast<long>(wait.count()) * 1000));
      const int n = socket_->receiveBytes(data, sizeof data);
      if (n <= 0) {
        closed_ = true;
        return;
      }
      buffer_.append(data, static_cast<std::size_t>(n));
    } catch (const Poco::TimeoutException&) {
    } catch (const Poco::Exception&) {
      closed_ = true;  // reset, or a TLS error on a closing connection
    }
  }

  std::optional<Response> Extract(bool head_only) {
    const auto end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    Response response;
    response.head = buffer_.substr(0, end);
    if (response.head.rfind("HTTP/1.1 ", 0) != 0 || response.head.size() < 12) {
      ADD_FAILURE() << "not an HTTP response: " << response.head;
      buffer_.clear();
      return std::nullopt;
    }
    response.status = std::stoi(response.head.substr(9, 3));
    std::size_t length = 0;
    if (response.status >= 200 && !head_only) {
      const auto declared = response.Header("Content-Length");
      if (declared) length = std::stoul(*declared);
    }
    if (buffer_.size() < end + 4 + length) return std::nullopt;
    response.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    return response;
  }

  std::unique_ptr<Poco::Net::StreamSocket> socket_;
  std::string buffer_;
  bool closed_ = false;
};

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

std::string Post(const std::string& path, const std::string& body, const std::string& extra = "") {
  return "POST " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}

// "METHOD target body" — what the echo handler answers.
std::string Echo(const std::string& method, const std::string& target,
                 const std::string& body = "") {
  return method + " " + target + " " + body;
}

class HttpsFrontTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ijazat::testing::TempDir();
    const auto made = ijazat::testing::RunCommand(
        "cd " + dir_->path().string() +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        " -keyout server.key -out server.crt 2>&1"
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
        " -subj /CN=ijazat-test-client -keyout client.key -out client.crt 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    options_.io_threads = 2;
    options_.workers = 4;
    options_.request_timeout = milliseconds(3000);
    options_.keep_alive_timeout = milliseconds(3000);
    handler_ = [](const HttpRequest& request) {
      HttpResponse response;
      response.headers = {{"Content-Type", "text/plain"}};
      response.body = Echo(request.method, request.target, request.body);
      return response;
    };
  }

  void TearDown() override {
    gate_.Open();
    front_.reset();
  }

  static std::string Path(const char* name) { return (dir_->path() / name).string(); }

  // A server context as the appliance makes one: TLS 1.2+, the test certificate; with
  // `verify_clients`, client certificates issued by (here: equal to) client.crt are verified.
  static SSL_CTX* ServerContext(bool verify_clients) {
    SSL_CTX* tls = SSL_CTX_new(TLS_server_method());
    if (tls == nullptr) return nullptr;
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(tls, Path("server.crt").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls, Path("server.key").c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(tls) != 1) {
      SSL_CTX_free(tls);
      return nullptr;
    }
    if (verify_clients) {
      if (SSL_CTX_load_verify_locations(tls, Path("client.crt").c_str(), nullptr) != 1) {
        SSL_CTX_free(tls);
        return nullptr;
      }
      SSL_CTX_set_verify(tls, SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_session_id_context(tls, reinterpret_cast<const unsigned char*>("ijazat-test"),
                                     11);
    }
    return tls;
  }

  void StartFrontEnd(bool verify_clients = false) {
    SSL_CTX* tls = ServerContext(verify_clients);
    ASSERT_NE(tls, nullptr) << "cannot make the server TLS context";
    auto started = HttpsFrontEnd::Start(options_, tls, handler_);
    SSL_CTX_free(tls);  // the front end holds its own reference
    ASSERT_TRUE(started.ok()) << started.error().message();
    front_ = std::move(started).value();
    ASSERT_GT(front_->port(), 0);
  }

  Poco::Net::SocketAddress Address() const {
    return Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(front_->port()));
  }

  // A TLS client (the handshake is done on connect); with `certificate`, it presents client.crt.
  std::unique_ptr<Client> ConnectTls(bool certificate = false) {
    Poco::Net::Context::Ptr context =
        certificate
            ? new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, Path("client.key"),
                                     Path("client.crt"), Path("server.crt"),
                                     Poco::Net::Context::VERIFY_RELAXED, 9, false)
            : new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", Path("server.crt"),
                                     Poco::Net::Context::VERIFY_RELAXED, 9, false);
    auto socket = std::make_unique<Poco::Net::SecureStreamSocket>(Address(), context);
    return std::make_unique<Client>(std::move(socket));
  }

  // A plain TCP connection that never starts TLS.
  std::unique_ptr<Client> ConnectTcp() {
    return std::make_unique<Client>(std::make_unique<Poco::Net::StreamSocket>(Address()));
  }

  static inline ijazat::testing::TempDir* dir_ = nullptr;
  FrontEndOptions options_;
  HttpsFrontEnd::Handler handler_;
  Gate gate_;
  std::unique_ptr<HttpsFrontEnd> front_;
};

TEST_F(HttpsFrontTest, AnswersRequestsAndReusesTheConnectionForThree) {
  StartFrontEnd();
  auto client = ConnectTls();
  for (int i = 0; i < 3; ++i) {
    const std::string path = "/v1/item/" + std::to_string(i);
    ASSERT_TRUE(client->Send(Post(path, "body-" + std::to_string(i))));
    const auto response = client->Read();
    ASSERT_TRUE(response.has_value()) << "request " << i << "; got: " << client->buffered();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, Echo("POST", path, "body-" + std::to_string(i)));
    EXPECT_EQ(response->Header("Connection"), "keep-alive");
    EXPECT_EQ(response->Header("Content-Type"), "text/plain");
    EXPECT_TRUE(response->Header("Date").has_value());
  }
  EXPECT_FALSE(client->closed());
  EXPECT_EQ(front_->counters().accepted.load(), 1u);
  EXPECT_EQ(front_->counters().open_connections.load(), 1);
}

TEST_F(HttpsFrontTest, PipelinedRequestsInOneWriteAreAnsweredInOrder) {
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Post("/first", "one") + Get("/second") + Post("/third", "three")));
  const auto first = client->Read();
  const auto second = client->Read();
  const auto third = client->Read();
  ASSERT_TRUE(first && second && third) << client->buffered();
  EXPECT_EQ(first->body, Echo("POST", "/first", "one"));
  EXPECT_EQ(second->body, Echo("GET", "/second"));
  EXPECT_EQ(third->body, Echo("POST", "/third", "three"));
  EXPECT_FALSE(client->closed());
}

TEST_F(HttpsFrontTest, Expect100ContinueGetsAnInterimResponseThenTheFinalOne) {
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(
      client->Send("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                   "Content-Length: 5\r\n\r\n"));
  const auto interim = client->Read();
  ASSERT_TRUE(interim.has_value()) << client->buffered();
  EXPECT_EQ(interim->status, 100);
  EXPECT_TRUE(interim->body.empty());
  ASSERT_TRUE(client->Send("hello"));
  const auto final_response = client->Read();
  ASSERT_TRUE(final_response.has_value()) << client->buffered();
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(final_response->body, Echo("POST", "/upload", "hello"));

  // The next request on the connection gets its own interim response.
  ASSERT_TRUE(
      client->Send("POST /again HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                   "Content-Length: 2\r\n\r\n"));
  const auto second_interim = client->Read();
  ASSERT_TRUE(second_interim.has_value()) << client->buffered();
  EXPECT_EQ(second_interim->status, 100);
  ASSERT_TRUE(client->Send("ok"));
  const auto second_final = client->Read();
  ASSERT_TRUE(second_final.has_value());
  EXPECT_EQ(second_final->body, Echo("POST", "/again", "ok"));
}

TEST_F(HttpsFrontTest, FramingErrorGetsProblemJsonAndTheConnectionIsClosed) {
  int handled = 0;
  handler_ = [&handled](const HttpRequest&) {
    ++handled;
    return HttpResponse{};
  };
  StartFrontEnd();
  auto client = ConnectTls();
  // HTTP/1.1 without Host, followed by a request that must not be served.
  ASSERT_TRUE(client->Send("GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n" + Get("/after")));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value()) << client->buffered();
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->Header("Content-Type"), "application/problem+json");
  EXPECT_EQ(response->Header("Connection"), "close");
  EXPECT_NE(response->body.find("\"status\":400"), std::string::npos) << response->body;
  EXPECT_NE(response->body.find("malformed_request"), std::string::npos) << response->body;
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
  EXPECT_FALSE(client->Read(milliseconds(0)).has_value());
  EXPECT_EQ(handled, 0);
  EXPECT_EQ(front_->counters().malformed_requests.load(), 1u);
}

TEST_F(HttpsFrontTest, OversizedDeclaredBodyGets413AndTheConnectionIsClosed) {
  options_.limits.max_body_bytes = 100;
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send("POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 101\r\n\r\n"));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value()) << client->buffered();
  EXPECT_EQ(response->status, 413);
  EXPECT_NE(response->body.find("body_too_large"), std::string::npos) << response->body;
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
}

TEST_F(HttpsFrontTest, ClientSendingAByteAtATimeIsClosedAfterRequestTimeout) {
  options_.request_timeout = milliseconds(1000);
  options_.keep_alive_timeout = milliseconds(5000);
  StartFrontEnd();
  const auto start = Clock::now();
  auto client = ConnectTls();
  const std::string request =
      Get("/slow", "X-Padding: " + std::string(400, 'p') + "\r\n");  // ~10 s at this pace
  std::size_t sent = 0;
  while (sent < request.size() && SecondsSince(start) < 4.0) {
    if (!client->Send(request.substr(sent, 1))) break;
    ++sent;
    if (client->WaitClosed(milliseconds(25))) break;
  }
  const double elapsed = SecondsSince(start);
  EXPECT_TRUE(client->WaitClosed(milliseconds(100)))
      << "still open after " << elapsed << " s and " << sent << " bytes";
  EXPECT_LT(elapsed, 1.5) << "closed after " << elapsed << " s";
  EXPECT_GT(elapsed, 0.9) << "closed before the deadline, after " << elapsed << " s";
  EXPECT_LT(sent, request.size());
  EXPECT_GE(front_->counters().timeouts.load(), 1u);
}

TEST_F(HttpsFrontTest, SlowSecondRequestOnAKeptAliveConnectionIsClosedAfterRequestTimeout) {
  options_.request_timeout = milliseconds(1000);
  options_.keep_alive_timeout = milliseconds(5000);
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/first")));
  ASSERT_TRUE(client->Read().has_value());
  // Idle for a while (well within keep_alive_timeout), then dribble the next request.
  EXPECT_FALSE(client->WaitClosed(milliseconds(300)));
  const auto start = Clock::now();
  const std::string request = Get("/slow", "X-Padding: " + std::string(400, 'p') + "\r\n");
  for (std::size_t sent = 0; sent < request.size() && SecondsSince(start) < 4.0; ++sent) {
    if (!client->Send(request.substr(sent, 1))) break;
    if (client->WaitClosed(milliseconds(25))) break;
  }
  const double elapsed = SecondsSince(start);
  EXPECT_TRUE(client->WaitClosed(milliseconds(100))) << "still open after " << elapsed << " s";
  EXPECT_LT(elapsed, 1.5);
  EXPECT_GT(elapsed, 0.9);
}

TEST_F(HttpsFrontTest, IdleKeepAliveConnectionIsClosedAfterKeepAliveTimeout) {
  options_.request_timeout = milliseconds(5000);
  options_.keep_alive_timeout = milliseconds(600);
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/once")));
  ASSERT_TRUE(client->Read().has_value());
  const auto start = Clock::now();
  EXPECT_TRUE(client->WaitClosed(milliseconds(3000)));
  const double elapsed = SecondsSince(start);
  EXPECT_LT(elapsed, 0.6 + 0.5);
  EXPECT_GT(elapsed, 0.4);
  EXPECT_TRUE(client->buffered().empty()) << client->buffered();
  EXPECT_TRUE(WaitFor([&] { return front_->counters().open_connections.load() == 0; }));
}

TEST_F(HttpsFrontTest, SilentTcpConnectionIsClosedAfterRequestTimeoutWhileOthersAreServed) {
  options_.workers = 1;
  options_.io_threads = 1;
  options_.request_timeout = milliseconds(1000);
  StartFrontEnd();
  const auto start = Clock::now();
  auto silent = ConnectTcp();  // never sends a ClientHello
  ASSERT_TRUE(WaitFor([&] { return front_->counters().accepted.load() == 1; }));

  // Meanwhile, another client gets through handshake and request promptly.
  for (int i = 0; i < 3; ++i) {
    const auto served_start = Clock::now();
    auto client = ConnectTls();
    ASSERT_TRUE(client->Send(Get("/meanwhile")));
    const auto response = client->Read();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, 200);
    EXPECT_LT(SecondsSince(served_start), 0.5);
  }
  EXPECT_LT(SecondsSince(start), 1.0) << "the test machine is too slow to tell";
  EXPECT_FALSE(silent->closed());

  EXPECT_TRUE(silent->WaitClosed(milliseconds(3000)));
  const double elapsed = SecondsSince(start);
  EXPECT_LT(elapsed, 1.5);
  EXPECT_GT(elapsed, 0.9);
  EXPECT_GE(front_->counters().timeouts.load(), 1u);
}

TEST_F(HttpsFrontTest, ConnectionPastMaxConnectionsIsClosedAtOnce) {
  options_.max_connections = 2;
  options_.request_timeout = milliseconds(4000);
  StartFrontEnd();
  auto first = ConnectTls();
  auto second = ConnectTcp();
  ASSERT_TRUE(WaitFor([&] { return front_->counters().open_connections.load() == 2; }));

  const auto start = Clock::now();
  auto third = ConnectTcp();
  EXPECT_TRUE(third->WaitClosed(milliseconds(2000)));
  EXPECT_LT(SecondsSince(start), 0.5);
  EXPECT_EQ(front_->counters().refused_at_capacity.load(), 1u);
  EXPECT_EQ(front_->counters().open_connections.load(), 2);

  // Those already in are served.
  ASSERT_TRUE(first->Send(Get("/in")));
  const auto response = first->Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);

  // Once one leaves, a new client gets in.
  second.reset();
  ASSERT_TRUE(WaitFor([&] { return front_->counters().open_connections.load() == 1; }))
      << "the closed connection is still counted";
  auto fourth = ConnectTls();
  ASSERT_TRUE(fourth->Send(Get("/later")));
  const auto later = fourth->Read();
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->status, 200);
  EXPECT_EQ(front_->counters().refused_at_capacity.load(), 1u);
}

TEST_F(HttpsFrontTest, FullQueueGets503OverloadedWithRetryAfter) {
  options_.workers = 1;
  options_.max_queued = 1;
  handler_ = [this](const HttpRequest& request) {
    if (request.Path() == "/block") gate_.Pass();
    HttpResponse response;
    response.body = request.target;
    return response;
  };
  StartFrontEnd();
  auto busy = ConnectTls();
  ASSERT_TRUE(busy->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1)) << "the first request never reached the worker";

  auto queued = ConnectTls();
  ASSERT_TRUE(queued->Send(Get("/queued")));
  ASSERT_TRUE(WaitFor([&] { return front_->counters().queued_requests.load() == 1; }));

  auto refused = ConnectTls();
  ASSERT_TRUE(refused->Send(Get("/refused")));
  const auto response = refused->Read();
  ASSERT_TRUE(response.has_value()) << refused->buffered();
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->Header("Retry-After"), "1");
  EXPECT_EQ(response->Header("Content-Type"), "application/problem+json");
  EXPECT_NE(response->body.find("\"title\":\"overloaded\""), std::string::npos) << response->body;
  EXPECT_TRUE(refused->WaitClosed(milliseconds(2000)));
  EXPECT_EQ(front_->counters().overloaded.load(), 1u);

  gate_.Open();
  const auto busy_response = busy->Read();
  ASSERT_TRUE(busy_response.has_value());
  EXPECT_EQ(busy_response->status, 200);
  EXPECT_EQ(busy_response->body, "/block");
  const auto queued_response = queued->Read();
  ASSERT_TRUE(queued_response.has_value());
  EXPECT_EQ(queued_response->status, 200);
  EXPECT_EQ(queued_response->body, "/queued");
}

TEST_F(HttpsFrontTest, StopLetsTheInFlightRequestFinishAndClosesIdleConnections) {
  handler_ = [this](const HttpRequest& request) {
    if (request.Path() == "/block") gate_.Pass();
    HttpResponse response;
    response.body = request.target;
    return response;
  };
  StartFrontEnd();
  auto idle = ConnectTls();
  ASSERT_TRUE(idle->Send(Get("/before")));
  ASSERT_TRUE(idle->Read().has_value());

  auto in_flight = ConnectTls();
  ASSERT_TRUE(in_flight->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1));

  const auto start = Clock::now();
  auto stopped = std::async(std::launch::async, [this] { front_->Stop(milliseconds(4000)); });
  OpenOnExit open_on_exit{gate_};
  EXPECT_TRUE(idle->WaitClosed(milliseconds(1000))) << "the idle connection was kept open";
  EXPECT_EQ(stopped.wait_for(milliseconds(0)), std::future_status::timeout)
      << "Stop returned before the in-flight request was answered";

  gate_.Open();
  const auto response = in_flight->Read();
  ASSERT_TRUE(response.has_value()) << in_flight->buffered();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "/block");
  EXPECT_TRUE(in_flight->WaitClosed(milliseconds(2000)));
  EXPECT_EQ(stopped.wait_for(milliseconds(2000)), std::future_status::ready);
  EXPECT_LT(SecondsSince(start), 3.0) << "Stop waited out the grace period";
  EXPECT_EQ(front_->counters().open_connections.load(), 0);

  // No longer accepting.
  bool refused = false;
  try {
    auto late = ConnectTcp();
    refused = late->WaitClosed(milliseconds(500));
  } catch (const Poco::Exception&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
}

TEST_F(HttpsFrontTest, HeadResponseHasTheLengthButNoBodyAndTheConnectionStaysInStep) {
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send("HEAD /h HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + Get("/g")));
  const auto head = client->Read(milliseconds(3000), /*head_only=*/true);
  ASSERT_TRUE(head.has_value()) << client->buffered();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(Echo("HEAD", "/h").size()));
  const auto get = client->Read();
  ASSERT_TRUE(get.has_value()) << client->buffered();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, Echo("GET", "/g"));
}

TEST_F(HttpsFrontTest, Expect100ContinueWithAnOversizedBodyGetsOnlyTheFinal413) {
  options_.limits.max_body_bytes = 100;
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(
      client->Send("POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                   "Content-Length: 1000\r\n\r\n"));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value()) << client->buffered();
  EXPECT_EQ(response->status, 413);
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
}

TEST_F(HttpsFrontTest, PlainHttpOnTheTlsPortFailsTheHandshakeAndIsClosedAtOnce) {
  StartFrontEnd();
  auto client = ConnectTcp();
  const auto start = Clock::now();
  ASSERT_TRUE(client->Send(Get("/plain")));
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
  EXPECT_LT(SecondsSince(start), 0.5);
  EXPECT_TRUE(WaitFor([&] { return front_->counters().handshake_failures.load() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return front_->counters().open_connections.load() == 0; }));
}

TEST_F(HttpsFrontTest, ClientThatDoesNotReadItsResponseIsClosedAfterRequestTimeout) {
  options_.request_timeout = milliseconds(1000);
  handler_ = [](const HttpRequest&) {
    HttpResponse response;
    response.body = std::string(64 << 20, 'r');  // far more than the socket buffers hold
    return response;
  };
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/huge")));
  ASSERT_TRUE(WaitFor([&] { return front_->counters().queued_requests.load() == 0; }));
  // Never read: the server must give up writing at the deadline. How soon after the deadline
  // depends on the machine's load (a 64 MiB response is built and encrypted first), so the
  // test waits generously and checks that it was the deadline that closed the connection.
  EXPECT_TRUE(WaitFor([&] { return front_->counters().open_connections.load() == 0; },
                      milliseconds(20000)));
  EXPECT_GE(front_->counters().timeouts.load(), 1u);
}

TEST_F(HttpsFrontTest, ResponseFinishedWhileStoppingSaysConnectionClose) {
  // The connection is closed after this response, so the response must say so (RFC 9112
  // 9.6); a client told "keep-alive" would send its next request into a closing connection.
  handler_ = [this](const HttpRequest& request) {
    if (request.Path() == "/block") gate_.Pass();
    HttpResponse response;
    response.body = request.target;
    return response;
  };
  StartFrontEnd();
  auto idle = ConnectTls();
  ASSERT_TRUE(idle->Send(Get("/before")));
  ASSERT_TRUE(idle->Read().has_value());
  auto in_flight = ConnectTls();
  ASSERT_TRUE(in_flight->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1));
  auto stopped = std::async(std::launch::async, [this] { front_->Stop(milliseconds(4000)); });
  OpenOnExit open_on_exit{gate_};
  // Draining has begun once the idle connection is closed.
  ASSERT_TRUE(idle->WaitClosed(milliseconds(1000)));
  gate_.Open();
  const auto response = in_flight->Read();
  ASSERT_TRUE(response.has_value()) << in_flight->buffered();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("Connection"), "close");
  EXPECT_TRUE(in_flight->WaitClosed(milliseconds(2000)));
  EXPECT_EQ(stopped.wait_for(milliseconds(2000)), std::future_status::ready);
}

TEST_F(HttpsFrontTest, ConnectionArrivingWhileStoppingIsClosedPromptly) {
  // While Stop waits for an in-flight request, a new client must be turned away at once
  // rather than left in the listen backlog until the grace period ends.
  handler_ = [this](const HttpRequest& request) {
    if (request.Path() == "/block") gate_.Pass();
    return HttpResponse{};
  };
  // One event loop: once the idle connection is closed, that loop has seen the Stop, so the
  // late connection cannot slip in ahead of it.
  options_.io_threads = 1;
  StartFrontEnd();
  auto idle = ConnectTls();
  ASSERT_TRUE(idle->Send(Get("/before")));
  ASSERT_TRUE(idle->Read().has_value());
  auto in_flight = ConnectTls();
  ASSERT_TRUE(in_flight->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1));
  auto stopped = std::async(std::launch::async, [this] { front_->Stop(milliseconds(4000)); });
  OpenOnExit open_on_exit{gate_};
  ASSERT_TRUE(idle->WaitClosed(milliseconds(1000)));

  const auto start = Clock::now();
  bool turned_away = false;
  std::string how = "hanging";
  try {
    auto late = ConnectTcp();
    turned_away = late->WaitClosed(milliseconds(1000));
    if (turned_away) how = "closed";
  } catch (const Poco::Exception& e) {
    turned_away = true;  // refused
    how = e.displayText();
  }
  EXPECT_TRUE(turned_away) << "a connection made while stopping was " << how << " for "
                           << SecondsSince(start) << " s";
}

TEST_F(HttpsFrontTest, StopClosesConnectionsAfterGraceWhenAHandlerOverruns) {
  handler_ = [this](const HttpRequest& request) {
    if (request.Path() == "/block") gate_.Pass();
    HttpResponse response;
    response.body = request.target;
    return response;
  };
  StartFrontEnd();
  auto in_flight = ConnectTls();
  ASSERT_TRUE(in_flight->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1));
  const auto start = Clock::now();
  auto stopped = std::async(std::launch::async, [this] { front_->Stop(milliseconds(300)); });
  OpenOnExit open_on_exit{gate_};
  EXPECT_TRUE(in_flight->WaitClosed(milliseconds(2000)));
  const double elapsed = SecondsSince(start);
  EXPECT_LT(elapsed, 0.3 + 0.5);
  EXPECT_GT(elapsed, 0.25);
  gate_.Open();
  EXPECT_EQ(stopped.wait_for(milliseconds(2000)), std::future_status::ready);
}

TEST_F(HttpsFrontTest, MaxKeepAliveRequestsClosesAfterTheLastWithConnectionClose) {
  options_.max_keep_alive_requests = 2;
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/1")));
  const auto first = client->Read();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->Header("Connection"), "keep-alive");
  ASSERT_TRUE(client->Send(Get("/2")));
  const auto second = client->Read();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, Echo("GET", "/2"));
  EXPECT_EQ(second->Header("Connection"), "close");
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
}

TEST_F(HttpsFrontTest, ConnectionCloseFromTheClientIsHonoured) {
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/bye", "Connection: close\r\n")));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->Header("Connection"), "close");
  EXPECT_TRUE(client->WaitClosed(milliseconds(2000)));
}

TEST_F(HttpsFrontTest, HandlerThatThrowsGets500AndTheServerKeepsServing) {
  handler_ = [](const HttpRequest& request) -> HttpResponse {
    if (request.Path() == "/throw") throw std::runtime_error("boom");
    HttpResponse response;
    response.body = "fine";
    return response;
  };
  StartFrontEnd();
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/throw")));
  const auto failed = client->Read();
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->status, 500);
  EXPECT_EQ(failed->body.find("boom"), std::string::npos) << failed->body;
  auto other = ConnectTls();
  ASSERT_TRUE(other->Send(Get("/ok")));
  const auto ok = other->Read();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->body, "fine");
}

// Every answer leaves with the same headers, whoever wrote it: the handler, the worker's
// last resort when the handler throws, a framing error, the full queue's 503 (and a HEAD's
// answer has no body, whichever it is).
TEST_F(HttpsFrontTest, EveryResponseCarriesTheSameHeaders_TheFrontEndsOwnAnswersToo) {
  options_.workers = 1;
  options_.max_queued = 1;
  handler_ = [this](const HttpRequest& request) -> HttpResponse {
    if (request.Path() == "/throw") throw std::runtime_error("boom");
    if (request.Path() == "/block") gate_.Pass();
    HttpResponse response;
    response.headers = {{"Content-Type", "text/plain"}};
    if (request.Path() == "/cacheable") response.headers.emplace_back("cache-control", "max-age=5");
    response.body = "fine";
    return response;
  };
  StartFrontEnd();
  OpenOnExit open{gate_};
  auto expect_every_header = [](const Response& response, const std::string& what,
                                const std::string& cache_control = "no-store") {
    // As the handler spelt it, or as the front end does.
    EXPECT_EQ(
        response.Header("Cache-Control").value_or(response.Header("cache-control").value_or("")),
        cache_control)
        << what;
    EXPECT_EQ(response.Header("Strict-Transport-Security"), "max-age=63072000") << what;
    EXPECT_EQ(response.Header("X-Content-Type-Options"), "nosniff") << what;
    EXPECT_EQ(response.Header("X-Frame-Options"), "DENY") << what;
    EXPECT_EQ(response.Header("Content-Security-Policy"),
              "default-src 'none'; frame-ancestors 'none'")
        << what;
    EXPECT_EQ(response.Header("Referrer-Policy"), "no-referrer") << what;
    // Once each: the handler's own Cache-Control is not doubled.
    std::string lower = response.head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto first = lower.find("\r\ncache-control: ");
    EXPECT_NE(first, std::string::npos) << what;
    EXPECT_EQ(lower.find("\r\ncache-control: ", first + 1), std::string::npos) << what;
  };
  // A problem of the front end's own is named like the handler's: X-Request-Id is the id its
  // instance gives.
  auto expect_named = [](const Response& response, const std::string& what) {
    const std::optional<std::string> id = response.Header("X-Request-Id");
    ASSERT_TRUE(id.has_value()) << what;
    EXPECT_NE(response.body.find("\"instance\":\"urn:ijazat:request:" + *id + "\""),
              std::string::npos)
        << what << ": " << response.body;
  };

  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/ok")));
  const auto ok = client->Read();
  ASSERT_TRUE(ok.has_value()) << client->buffered();
  EXPECT_EQ(ok->status, 200);
  expect_every_header(*ok, "the handler's answer");

  ASSERT_TRUE(client->Send(Get("/cacheable")));
  const auto cacheable = client->Read();
  ASSERT_TRUE(cacheable.has_value()) << client->buffered();
  expect_every_header(*cacheable, "an answer the handler made cacheable", "max-age=5");

  ASSERT_TRUE(client->Send(Get("/throw")));
  const auto thrown = client->Read();
  ASSERT_TRUE(thrown.has_value()) << client->buffered();
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(thrown->Header("Content-Type"), "application/problem+json");
  expect_every_header(*thrown, "the worker's 500");
  expect_named(*thrown, "the worker's 500");

  ASSERT_TRUE(client->Send("HEAD /throw HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + Get("/ok")));
  const auto thrown_head = client->Read(milliseconds(3000), /*head_only=*/true);
  ASSERT_TRUE(thrown_head.has_value()) << client->buffered();
  EXPECT_EQ(thrown_head->status, 500);
  expect_every_header(*thrown_head, "the worker's 500 to a HEAD");
  const auto after = client->Read();
  ASSERT_TRUE(after.has_value()) << "the HEAD's answer had a body: " << client->buffered();
  EXPECT_EQ(after->body, "fine");

  auto framing = ConnectTls();
  ASSERT_TRUE(framing->Send("GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n"));  // no Host
  const auto malformed = framing->Read();
  ASSERT_TRUE(malformed.has_value()) << framing->buffered();
  EXPECT_EQ(malformed->status, 400);
  expect_every_header(*malformed, "a framing error");
  expect_named(*malformed, "a framing error");

  // The full queue: one request at the worker, one queued, the third refused.
  auto busy = ConnectTls();
  ASSERT_TRUE(busy->Send(Get("/block")));
  ASSERT_TRUE(gate_.WaitArrived(1));
  auto queued = ConnectTls();
  ASSERT_TRUE(queued->Send(Get("/queued")));
  ASSERT_TRUE(WaitFor([&] { return front_->counters().queued_requests.load() == 1; }));
  auto refused = ConnectTls();
  ASSERT_TRUE(refused->Send("HEAD /refused HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  const auto overloaded = refused->Read(milliseconds(3000), /*head_only=*/true);
  ASSERT_TRUE(overloaded.has_value()) << refused->buffered();
  EXPECT_EQ(overloaded->status, 503);
  EXPECT_EQ(overloaded->Header("Retry-After"), "1");
  expect_every_header(*overloaded, "the full queue's 503");
  EXPECT_TRUE(refused->WaitClosed(milliseconds(2000)));
  EXPECT_EQ(refused->buffered(), "") << "a HEAD's 503 has no body";
  gate_.Open();
  EXPECT_TRUE(busy->Read().has_value());
  EXPECT_TRUE(queued->Read().has_value());
}

TEST_F(HttpsFrontTest, RequestCarriesClientAddressAndNoDigestWithoutClientCertificate) {
  handler_ = [](const HttpRequest& request) {
    HttpResponse response;
    response.body = request.client_address + "|" + (request.client_loopback ? "loop" : "remote") +
                    "|" + Hex(request.peer_certificate_sha256);
    return response;
  };
  StartFrontEnd(/*verify_clients=*/true);  // asks for a certificate; the client has none
  auto client = ConnectTls();
  ASSERT_TRUE(client->Send(Get("/who")));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body, "127.0.0.1|loop|");
}

TEST_F(HttpsFrontTest, PeerCertificateDigestIsTheSha256OfTheVerifiedClientCertificate) {
  handler_ = [](const HttpRequest& request) {
    HttpResponse response;
    response.body = Hex(request.peer_certificate_sha256);
    return response;
  };
  StartFrontEnd(/*verify_clients=*/true);

  std::string expected;
  {
    FILE* file = std::fopen(Path("client.crt").c_str(), "r");
    ASSERT_NE(file, nullptr);
    X509* certificate = PEM_read_X509(file, nullptr, nullptr, nullptr);
    std::fclose(file);
    ASSERT_NE(certificate, nullptr);
    unsigned char* der = nullptr;
    const int length = i2d_X509(certificate, &der);
    ASSERT_GT(length, 0);
    unsigned char sha[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(length), sha);
    OPENSSL_free(der);
    X509_free(certificate);
    expected = Hex(std::string_view(reinterpret_cast<const char*>(sha), sizeof sha));
  }

  auto client = ConnectTls(/*certificate=*/true);
  ASSERT_TRUE(client->Send(Get("/who")));
  const auto response = client->Read();
  ASSERT_TRUE(response.has_value()) << client->buffered();
  EXPECT_EQ(response->body, expected);
  EXPECT_EQ(response->body.size(), 64u);
}

}  // namespace
}  // namespace ijazat::appliance
