#include "tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace ijazat::appliance {
namespace {

constexpr int kExpiryWarningDays = 30;

Error Invalid(const std::string& message) {
  return Error(ErrorCode::kFailedPrecondition, message, "tls_invalid");
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

Result<BioPtr> OpenFile(const std::string& path, const std::string& what) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    const int error = errno;
    ERR_clear_error();
    return Invalid("cannot read the " + what + " " + path + ": " + std::strerror(error));
  }
  return bio;
}

bool InGroup(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int count = ::getgroups(0, nullptr);
  if (count <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  const int got = ::getgroups(count, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

// A passphrase is never asked for: the appliance starts unattended.
int NoPassphrase(char*, int, int, void*) { return -1; }

Result<std::vector<X509Ptr>> ReadCertificates(const std::string& path, const std::string& what) {
  IJAZAT_ASSIGN_OR_RETURN(BioPtr bio, OpenFile(path, what));
  std::vector<X509Ptr> certificates;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    certificates.emplace_back(cert);
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (certificates.empty()) {
    return Invalid("the " + what + " " + path + " holds no PEM certificate");
  }
  return certificates;
}

std::string Days(int days) { return std::to_string(days) + (days == 1 ? " day" : " days"); }

// Days from now to `time` (negative when it is past).
int DaysUntil(const ASN1_TIME* time, std::int64_t now) {
  int days = 0;
  int seconds = 0;
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> at(ASN1_TIME_set(nullptr, now),
                                                           ASN1_TIME_free);
  if (!at || ASN1_TIME_diff(&days, &seconds, at.get(), time) != 1) return 0;
  return days - (seconds < 0 ? 1 : 0);
}

}  // namespace

Result<std::vector<std::string>> CheckTlsFiles(const TlsFiles& files, std::int64_t now) {
  std::vector<std::string> warnings;
  IJAZAT_ASSIGN_OR_RETURN(const std::vector<X509Ptr> chain,
                          ReadCertificates(files.certificate, "TLS certificate file"));

  struct stat info {};
  if (::stat(files.key.c_str(), &info) != 0) {
    return Invalid("cannot read the TLS key file " + files.key + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the TLS key file " + files.key + " is not a regular file", "tls_key_unsafe");
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
  const auto unsafe = [&](const std::string& why) {
    return Error(ErrorCode::kFailedPrecondition,
                 "the TLS key file " + files.key + " " + why + " (mode " + mode + ", owner uid " +
                     std::to_string(info.st_uid) + ", group gid " + std::to_string(info.st_gid) +
                     "): whoever reads or replaces it can impersonate the appliance; make it "
                     "root's or the service user's, chmod 600, or 640 with the service's group",
                 "tls_key_unsafe");
  };
  if ((info.st_mode & S_IRWXO) != 0) return unsafe("is accessible to other users");
  if ((info.st_mode & (S_IWGRP | S_IXGRP)) != 0) return unsafe("is writable by its group");
  if (info.st_uid != 0 && info.st_uid != ::geteuid()) {
    return unsafe("belongs to another user");
  }
  // Its group may read it only if that group is the service's: root:ijazat 0640 as the package
  // installs it, not a group of other users.
  if ((info.st_mode & S_IRGRP) != 0 && !InGroup(info.st_gid)) {
    return unsafe("is readable by a group this process is not in");
  }
  IJAZAT_ASSIGN_OR_RETURN(BioPtr key_bio, OpenFile(files.key, "TLS key file"));
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    return Invalid("the TLS key file " + files.key +
                   " holds no unencrypted PEM private key (an encrypted key would need a "
                   "passphrase at every start)");
  }
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return Invalid("the private key in " + files.key + " is not the key of the certificate in " +
                   files.certificate + " (the first certificate of the file)");
  }
  if (!files.client_ca.empty()) {
    IJAZAT_RETURN_IF_ERROR(ReadCertificates(files.client_ca, "client CA file"));
  }

  X509* leaf = chain.front().get();
  const int expires_in = DaysUntil(X509_get0_notAfter(leaf), now);
  if (expires_in < 0) {
    warnings.push_back("the TLS certificate in " + files.certificate + " expired " +
                       Days(-expires_in) + " ago: clients will refuse it");
  } else if (expires_in < kExpiryWarningDays) {
    warnings.push_back("the TLS certificate in " + files.certificate + " expires in " +
                       Days(expires_in));
  }
  if (DaysUntil(X509_get0_notBefore(leaf), now) > 0) {
    warnings.push_back("the TLS certificate in " + files.certificate + " is not valid yet");
  }
  return warnings;
}

}  // namespace ijazat::appliance
