// TLS session resumption as ijazatd offers it: no TLS 1.2 session tickets (one ticket key for
// the life of the process would let whoever learns it decrypt every ticketed session since
// start), resumption by session id from the server's bounded cache instead, and TLS 1.3
// resumption kept (stateful tickets; the PSK is combined with a fresh (EC)DHE exchange).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "appliance_fixture.h"

namespace ijazat::appliance::testing {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct SessionFree {
  void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
};
using Session = std::unique_ptr<SSL_SESSION, SessionFree>;

struct Handshake {
  bool ok = false;
  bool reused = false;
  Session session;  // what the client may resume with next
};

class TlsSessionTest : public ApplianceTest {
 protected:
  // One connection: a handshake at exactly `version` (offering `resume` if given), one request
  // for /healthz (TLS 1.3 tickets arrive after the handshake), then a clean close.
  Handshake Connect(int version, SSL_SESSION* resume) {
    Handshake result;
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), version);
    SSL_CTX_set_max_proto_version(ctx.get(), version);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(appliance_->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd);
      return result;
    }
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>("localhost"));
    if (resume != nullptr) SSL_set_session(ssl.get(), resume);
    if (SSL_connect(ssl.get()) == 1) {
      const std::string request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
      char buffer[4096];
      if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0 &&
          SSL_read(ssl.get(), buffer, sizeof buffer) > 0) {
        result.ok = true;
        result.reused = SSL_session_reused(ssl.get()) == 1;
        result.session.reset(SSL_get1_session(ssl.get()));
      }
      SSL_shutdown(ssl.get());
    }
    ERR_clear_error();
    close(fd);
    return result;
  }
};

TEST_F(TlsSessionTest, Tls12_IssuesNoSessionTicket_AndResumesBySessionId) {
  const Handshake first = Connect(TLS1_2_VERSION, nullptr);
  ASSERT_TRUE(first.ok);
  ASSERT_NE(first.session, nullptr);
  EXPECT_EQ(SSL_SESSION_has_ticket(first.session.get()), 0)
      << "the server issued a TLS 1.2 session ticket";
  unsigned int id_length = 0;
  SSL_SESSION_get_id(first.session.get(), &id_length);
  EXPECT_GT(id_length, 0u) << "no session id to resume with";
  const Handshake again = Connect(TLS1_2_VERSION, first.session.get());
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.reused) << "a TLS 1.2 session id did not resume";
}

TEST_F(TlsSessionTest, Tls13_StillResumes) {
  const Handshake first = Connect(TLS1_3_VERSION, nullptr);
  ASSERT_TRUE(first.ok);
  ASSERT_NE(first.session, nullptr);
  ASSERT_EQ(SSL_SESSION_is_resumable(first.session.get()), 1);
  const Handshake again = Connect(TLS1_3_VERSION, first.session.get());
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.reused) << "TLS 1.3 resumption stopped working";
}

}  // namespace
}  // namespace ijazat::appliance::testing
