// hsm_bench: operations per second through the HSM layer against raw PKCS#11 calls on the same
// SoftHSM token in the same run, with 1 and 2 threads. The layer's overhead is the gap between
// the two. Not a test: numbers depend on the machine.
//
//   hsm_bench [--seconds S] [--json FILE]
//
// It makes its own SoftHSM token in a temporary directory, so it needs no set-up.
#include <dlfcn.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "ijazat/hsm/pkcs11_hsm.h"
#include "pkcs11.h"

namespace {

using namespace ijazat;
using Clock = std::chrono::steady_clock;

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kToken[] = "ijazat-bench";
constexpr char kPin[] = "bench-user-pin";
constexpr int kRounds = 3;

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "hsm_bench: " << message << '\n';
  std::exit(1);
}

// Runs `op` on `threads` threads for `seconds`; returns operations per second. `op` gets the
// thread index and returns false on failure.
double Measure(int threads, double seconds, const std::function<bool(int)>& op) {
  std::atomic<bool> stop{false};
  std::atomic<long> count{0};
  std::atomic<long> failures{0};
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      long local = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!op(t)) ++failures;
        ++local;
      }
      count += local;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (failures > 0) Die(std::to_string(failures.load()) + " operations failed");
  return static_cast<double>(count.load()) / elapsed;
}

// The raw baseline: one session per thread, handles found once, C_SignInit + C_Sign per call.
class RawSigner {
 public:
  explicit RawSigner(int threads) {
    void* handle = dlopen(kModule, RTLD_NOW | RTLD_LOCAL);
    auto* get = handle ? reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"))
                       : nullptr;
    if (get == nullptr || get(&fn_) != CKR_OK) Die("cannot load " + std::string(kModule));
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV rv = fn_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) Die("C_Initialize failed");
    CK_SLOT_ID slots[8];
    CK_ULONG count = 8;
    fn_->C_GetSlotList(CK_TRUE, slots, &count);
    for (CK_ULONG i = 0; i < count; ++i) {
      CK_TOKEN_INFO info{};
      fn_->C_GetTokenInfo(slots[i], &info);
      if (std::strncmp(reinterpret_cast<char*>(info.label), kToken, std::strlen(kToken)) == 0) {
        slot_ = slots[i];
      }
    }
    for (int t = 0; t < threads; ++t) {
      CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
      if (fn_->C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                             &session) != CKR_OK) {
        Die("C_OpenSession failed");
      }
      sessions_.push_back(session);
    }
    hmac_key_ = Find(CKO_SECRET_KEY, "otp/v1");
    ec_key_ = Find(CKO_PRIVATE_KEY, "receipt/v1");
  }

  bool Hmac(int thread, const std::string& data) {
    CK_MECHANISM mechanism{CKM_SHA256_HMAC, nullptr, 0};
    CK_BYTE out[32];
    CK_ULONG length = sizeof out;
    return fn_->C_SignInit(sessions_[thread], &mechanism, hmac_key_) == CKR_OK &&
           fn_->C_Sign(sessions_[thread],
                       reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(data.data())), data.size(),
                       out, &length) == CKR_OK;
  }

  bool SignEs256(int thread, const std::string& data) {
    CK_BYTE digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
    CK_BYTE out[64];
    CK_ULONG length = sizeof out;
    return fn_->C_SignInit(sessions_[thread], &mechanism, ec_key_) == CKR_OK &&
           fn_->C_Sign(sessions_[thread], digest, sizeof digest, out, &length) == CKR_OK;
  }

 private:
  CK_OBJECT_HANDLE Find(CK_OBJECT_CLASS object_class, std::string label) {
    CK_ATTRIBUTE query[] = {{CKA_CLASS, &object_class, sizeof object_class},
                            {CKA_LABEL, label.data(), label.size()}};
    CK_OBJECT_HANDLE object = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    fn_->C_FindObjectsInit(sessions_[0], query, 2);
    fn_->C_FindObjects(sessions_[0], &object, 1, &found);
    fn_->C_FindObjectsFinal(sessions_[0]);
    if (found != 1) Die("raw baseline cannot find " + label);
    return object;
  }

  CK_FUNCTION_LIST* fn_ = nullptr;
  CK_SLOT_ID slot_ = 0;
  std::vector<CK_SESSION_HANDLE> sessions_;
  CK_OBJECT_HANDLE hmac_key_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE ec_key_ = CK_INVALID_HANDLE;
};

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      Die("usage: hsm_bench [--seconds S] [--json FILE]");
    }
  }
  if (seconds <= 0) Die("--seconds must be positive");

  char pattern[] = "/tmp/ijazat-bench-XXXXXX";
  if (mkdtemp(pattern) == nullptr) Die("mkdtemp failed");
  const std::filesystem::path dir = pattern;
  std::filesystem::create_directories(dir / "tokens");
  std::ofstream(dir / "softhsm2.conf") << "directories.tokendir = " << (dir / "tokens").string()
                                       << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
  setenv("IJAZAT_BENCH_PIN", kPin, 1);

  const SecretString so_pin{std::string("bench-so-pin")};
  const SecretString user_pin{std::string(kPin)};
  if (auto status = hsm::InitToken(kModule, kToken, so_pin, user_pin); !status.ok()) {
    Die(status.error().message());
  }
  hsm::HsmOptions options;
  options.module_path = kModule;
  options.token_label = kToken;
  options.pin = hsm::PinSource::Environment("IJAZAT_BENCH_PIN");
  auto opened = hsm::Pkcs11Hsm::Open(options);
  if (!opened.ok()) Die(opened.error().message());
  auto& layer = **opened;
  for (const auto kind : {hsm::KeyKind::kOtp, hsm::KeyKind::kReceipt}) {
    if (auto created = layer.GenerateKey(kind); !created.ok()) Die(created.error().message());
  }
  const hsm::KeyRef otp{hsm::KeyKind::kOtp, 1};
  const hsm::KeyRef receipt{hsm::KeyKind::kReceipt, 1};
  const std::string data = "consent 0123456789abcdef 3520212345671 demo-bank account-opening";

  std::printf("%-10s %-8s %14s %14s %10s\n", "operation", "threads", "raw ops/s", "layer ops/s",
              "overhead");
  std::string json = "{\"results\":[";
  bool first = true;
  for (const int threads : {1, 2}) {
    RawSigner raw(threads);
    struct Case {
      const char* name;
      std::function<bool(int)> raw;
      std::function<bool(int)> layer;
    };
    const Case cases[] = {
        {"hmac", [&](int t) { return raw.Hmac(t, data); },
         [&](int) { return layer.Hmac(otp, AsBytes(data), hsm::HmacHash::kSha256).ok(); }},
        {"es256", [&](int t) { return raw.SignEs256(t, data); },
         [&](int) { return layer.SignEs256(receipt, AsBytes(data)).ok(); }},
    };
    for (const Case& c : cases) {
      // Interleaved rounds, best of each: a burst of other load on the machine then hurts
      // both sides alike instead of whichever ran during it.
      double raw_rate = 0;
      double layer_rate = 0;
      for (int round = 0; round < kRounds; ++round) {
        raw_rate = std::max(raw_rate, Measure(threads, seconds / kRounds, c.raw));
        layer_rate = std::max(layer_rate, Measure(threads, seconds / kRounds, c.layer));
      }
      const double overhead = (raw_rate - layer_rate) / raw_rate * 100.0;
      std::printf("%-10s %-8d %14.0f %14.0f %9.1f%%\n", c.name, threads, raw_rate, layer_rate,
                  overhead);
      char entry[256];
      std::snprintf(entry, sizeof entry,
                    "%s{\"operation\":\"%s\",\"threads\":%d,\"raw_ops_per_s\":%.0f,"
                    "\"layer_ops_per_s\":%.0f,\"overhead_percent\":%.1f}",
                    first ? "" : ",", c.name, threads, raw_rate, layer_rate, overhead);
      json += entry;
      first = false;
    }
  }
  json += "]}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json;
  opened->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
