// The link from the appliance to Kannel's smsbox, against a listener that records what it
// receives: sendsms goes by POST with Kannel's headers (no password, number or code in the
// URL, which smsbox's access log records), over HTTPS verified against the configured CA and
// the host's name, and each delivery-report URL carries a per-message token, never a secret.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "sms.h"
#include "support/temp_dir.h"

namespace ijazat::appliance::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Recorded {
  std::string method;
  std::string uri;
  std::map<std::string, std::string> headers;
  std::string body;
};

// Everything the listener received, shared with its handler threads.
struct Recording {
  std::mutex mutex;
  std::vector<Recorded> requests;
};

class RecordingHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RecordingHandler(Recording& recording) : recording_(recording) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Recorded recorded;
    recorded.method = request.getMethod();
    recorded.uri = request.getURI();
    for (const auto& [name, value] : request) recorded.headers[name] = value;
    std::ostringstream body;
    body << request.stream().rdbuf();
    recorded.body = body.str();
    {
      const std::lock_guard lock(recording_.mutex);
      recording_.requests.push_back(std::move(recorded));
    }
    response.setStatus(Poco::Net::HTTPResponse::HTTP_ACCEPTED);
    response.setContentType("text/plain");
    response.send() << "0: Accepted for delivery";
  }

 private:
  Recording& recording_;
};

class RecordingFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit RecordingFactory(Recording& recording) : recording_(recording) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RecordingHandler(recording_);
  }

 private:
  Recording& recording_;
};

class KannelLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two CAs; smsbox's certificate (for 127.0.0.1 and localhost) from the first, and one for
    // another host from the first too.
    const auto made = ijazat::testing::RunCommand(
        "cd " + dir_.path().string() +
        " && for ca in ca other-ca; do openssl req -x509 -newkey ec -pkeyopt "
        "ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=$ca -keyout $ca.key -out $ca.crt "
        "2>/dev/null || exit 1; done"
        " && for host in good:IP:127.0.0.1,DNS:localhost wrong-host:DNS:other.example; do "
        "name=${host%%:*}; san=${host#*:}; openssl req -newkey ec -pkeyopt "
        "ec_paramgen_curve:P-256 -nodes -subj /CN=$name -keyout $name.key -out $name.csr "
        "2>/dev/null && printf 'subjectAltName=%s\\n' \"$san\" > $name.ext && openssl x509 "
        "-req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "
        "$name.ext -out $name.crt 2>/dev/null || exit 1; done");
    ASSERT_EQ(made.exit_code, 0) << made.output;
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  std::string File(const std::string& name) const { return (dir_.path() / name).string(); }

  // Starts the recording listener: HTTPS with `certificate`, or plain HTTP when it is empty.
  int Listen(const std::string& certificate) {
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(2);
    if (certificate.empty()) {
      server_ = std::make_unique<Poco::Net::HTTPServer>(new RecordingFactory(recording_),
                                                        Poco::Net::ServerSocket(0), params);
    } else {
      Poco::Net::Context::Params tls;
      tls.certificateFile = File(certificate + ".crt");
      tls.privateKeyFile = File(certificate + ".key");
      tls.verificationMode = Poco::Net::Context::VERIFY_NONE;
      tls.loadDefaultCAs = false;
      Poco::Net::Context::Ptr context =
          new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, tls);
      server_ = std::make_unique<Poco::Net::HTTPServer>(
          new RecordingFactory(recording_), Poco::Net::SecureServerSocket(0, 64, context), params);
    }
    server_->start();
    return server_->port();
  }

  KannelOptions Options(const std::string& url, const std::string& ca) {
    KannelOptions options;
    options.url = url;
    options.ca_file = ca.empty() ? "" : File(ca + ".crt");
    options.username = "ijazat";
    options.password = SecretString(std::string(kPassword));
    options.from = "8009";
    options.dlr_url = "https://ijazat.example.pk/v1/sms/dlr";
    options.dlr_secret = SecretString(std::string(kDlrSecret));
    options.timeout_ms = 3000;
    return options;
  }

  std::vector<Recorded> Received() {
    const std::lock_guard lock(recording_.mutex);
    return recording_.requests;
  }

  static constexpr char kPassword[] = "kannel-password-9f1c";
  static constexpr char kDlrSecret[] = "delivery-report-secret-77aa";
  static constexpr char kText[] = "Ijazat code 493817: Demo Bank asks to verify your CNIC.";

  ijazat::testing::TempDir dir_;
  Recording recording_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

TEST_F(KannelLinkTest, Https_PostsWithKannelHeaders_AndNothingSecretInTheUrl) {
  const int port = Listen("good");
  auto sender = KannelSmsSender::Create(
      Options("https://127.0.0.1:" + std::to_string(port) + "/cgi-bin/sendsms", "ca"));
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  auto sent = (*sender)->Send(42, "+923001234567", kText);
  ASSERT_TRUE(sent.ok()) << sent.error().message();

  const auto received = Received();
  ASSERT_EQ(received.size(), 1u);
  Recorded request = received[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.uri, "/cgi-bin/sendsms") << "nothing rides in the URL";
  EXPECT_EQ(request.body, kText);
  EXPECT_THAT(request.headers["Content-Type"], HasSubstr("charset=UTF-8"));
  EXPECT_EQ(request.headers["X-Kannel-Username"], "ijazat");
  EXPECT_EQ(request.headers["X-Kannel-Password"], kPassword);
  EXPECT_EQ(request.headers["X-Kannel-From"], "8009");
  EXPECT_EQ(request.headers["X-Kannel-To"], "+923001234567");
  EXPECT_EQ(request.headers["X-Kannel-DLR-Mask"], "31");
  EXPECT_EQ(request.headers["X-Kannel-DLR-URL"],
            "https://ijazat.example.pk/v1/sms/dlr?id=42&token=" +
                DeliveryReportToken(kDlrSecret, 42) + "&status=%d");
  // The report URL, which Kannel stores and logs, holds no secret.
  for (const auto& [name, value] : request.headers) {
    EXPECT_THAT(value, Not(HasSubstr(kDlrSecret))) << name;
  }
  EXPECT_NE(DeliveryReportToken(kDlrSecret, 42), DeliveryReportToken(kDlrSecret, 43));
  EXPECT_EQ(DeliveryReportToken(kDlrSecret, 42).size(), 32u);
}

TEST_F(KannelLinkTest, Https_RefusesACertificateFromAnotherCa_SendingNothing) {
  const int port = Listen("good");
  auto sender = KannelSmsSender::Create(
      Options("https://127.0.0.1:" + std::to_string(port) + "/cgi-bin/sendsms", "other-ca"));
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  const auto sent = (*sender)->Send(7, "+923001234567", kText);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().reason(), "sms_unavailable");
  EXPECT_THAT(sent.error().message(), Not(HasSubstr(kPassword)));
  EXPECT_THAT(Received(), IsEmpty());
}

TEST_F(KannelLinkTest, Https_RefusesACertificateForAnotherHost_SendingNothing) {
  const int port = Listen("wrong-host");
  auto sender = KannelSmsSender::Create(
      Options("https://127.0.0.1:" + std::to_string(port) + "/cgi-bin/sendsms", "ca"));
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  const auto sent = (*sender)->Send(7, "+923001234567", kText);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().reason(), "sms_unavailable");
  EXPECT_THAT(Received(), IsEmpty());
}

TEST_F(KannelLinkTest, PlainHttpToLoopback_PostsTheSameWay) {
  const int port = Listen("");
  auto sender = KannelSmsSender::Create(
      Options("http://127.0.0.1:" + std::to_string(port) + "/cgi-bin/sendsms", ""));
  ASSERT_TRUE(sender.ok()) << sender.error().message();
  ASSERT_TRUE((*sender)->Send(9, "+923001234567", kText).ok());
  const auto received = Received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].method, "POST");
  EXPECT_EQ(received[0].uri, "/cgi-bin/sendsms");
}

TEST(KannelUrl, HttpsNeedsItsCa_PlainHttpOnlyToLoopback) {
  EXPECT_EQ(KannelUrlProblem("https://kannel.internal:13013/cgi-bin/sendsms", true), "");
  EXPECT_THAT(KannelUrlProblem("https://kannel.internal:13013/cgi-bin/sendsms", false),
              HasSubstr("sms.kannel.ca_file"));
  EXPECT_EQ(KannelUrlProblem("http://127.0.0.1:13013/cgi-bin/sendsms", false), "");
  EXPECT_EQ(KannelUrlProblem("http://127.0.0.5:13013/cgi-bin/sendsms", false), "");
  EXPECT_EQ(KannelUrlProblem("http://localhost:13013/cgi-bin/sendsms", false), "");
  EXPECT_EQ(KannelUrlProblem("http://[::1]:13013/cgi-bin/sendsms", false), "");
  EXPECT_THAT(KannelUrlProblem("http://kannel.internal:13013/cgi-bin/sendsms", false),
              HasSubstr("in clear"));
  EXPECT_THAT(KannelUrlProblem("http://10.0.0.7:13013/cgi-bin/sendsms", true),
              HasSubstr("in clear"));
  EXPECT_THAT(KannelUrlProblem("http://127.evil.example/cgi-bin/sendsms", false),
              HasSubstr("in clear"));
  EXPECT_THAT(KannelUrlProblem("http://ijazat:pw@127.0.0.1:13013/cgi-bin/sendsms", false),
              HasSubstr("credentials"));
  EXPECT_THAT(KannelUrlProblem("ftp://127.0.0.1/x", false), HasSubstr("https://"));
  EXPECT_THAT(KannelUrlProblem("https:///cgi-bin/sendsms", true), HasSubstr("host"));
  // Credentials in a query would be in smsbox's access log and the outbox's error notes.
  EXPECT_THAT(
      KannelUrlProblem("http://127.0.0.1:13013/cgi-bin/sendsms?username=u&password=pw", false),
      HasSubstr("no query"));
  EXPECT_THAT(KannelUrlProblem("https://kannel.internal/cgi-bin/sendsms#x", true),
              HasSubstr("no query"));
}

// The configuration refuses the link's unsafe forms at start, each with its key.
TEST(KannelConfig, RefusesPlainHttpAcrossTheNetwork_AndReportsWithoutTheirOwnSecret) {
  const std::string base = R"(issuer: https://ijazat.example.pk
tls: {certificate: c.crt, key: c.key}
hsm: {token: t, pin_file: p}
store: {path: s.db}
registry: {path: r.db}
policy: policy.yaml
)";
  const auto parse = [&](const std::string& sms) { return ParseConfig(base + sms, "k.yaml"); };
  const auto plain = parse(R"(sms:
  inbound_secret_file: gateway.secret
  sender: kannel
  kannel: {url: "http://kannel.internal:13013/cgi-bin/sendsms", username: u, password_file: k}
)");
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(plain.error().message(),
              HasSubstr("sms.kannel.url is plain http to kannel.internal"));

  // The https link with delivery reports, given `dlr_secret` (a line, or nothing).
  const auto with_reports = [&](const std::string& dlr_secret) {
    return parse("sms:\n  inbound_secret_file: gateway.secret\n" + dlr_secret +
                 R"(  sender: kannel
  kannel: {url: "https://kannel.internal/cgi-bin/sendsms", ca_file: ca.crt, username: u,
           password_file: k, dlr_url: "https://ijazat.example.pk/v1/sms/dlr"}
)");
  };
  const auto no_dlr_secret = with_reports("");
  ASSERT_FALSE(no_dlr_secret.ok());
  EXPECT_THAT(no_dlr_secret.error().message(), HasSubstr("sms.dlr_secret_file is required"));

  const auto shared = with_reports("  dlr_secret_file: gateway.secret\n");
  ASSERT_FALSE(shared.ok());
  EXPECT_THAT(shared.error().message(), HasSubstr("must not be sms.inbound_secret_file"));

  const auto good = with_reports("  dlr_secret_file: dlr.secret\n");
  EXPECT_TRUE(good.ok()) << good.error().message();
}

}  // namespace
}  // namespace ijazat::appliance::testing
