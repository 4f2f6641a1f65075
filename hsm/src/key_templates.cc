#include "key_templates.h"

#include <cstdio>

namespace ijazat::hsm {
namespace {

#define IJAZAT_ATTR(type, value) \
  BoolAttribute { type, #type, value }

std::vector<BoolAttribute> SecretCommon() {
  return {
      IJAZAT_ATTR(CKA_TOKEN, true),       IJAZAT_ATTR(CKA_PRIVATE, true),
      IJAZAT_ATTR(CKA_SENSITIVE, true),   IJAZAT_ATTR(CKA_EXTRACTABLE, false),
      IJAZAT_ATTR(CKA_MODIFIABLE, false), IJAZAT_ATTR(CKA_COPYABLE, false),
      IJAZAT_ATTR(CKA_WRAP, false),       IJAZAT_ATTR(CKA_UNWRAP, false),
      IJAZAT_ATTR(CKA_DERIVE, false),
  };
}

std::vector<BoolAttribute> GeneratedInside() {
  return {
      IJAZAT_ATTR(CKA_LOCAL, true),
      IJAZAT_ATTR(CKA_ALWAYS_SENSITIVE, true),
      IJAZAT_ATTR(CKA_NEVER_EXTRACTABLE, true),
  };
}

std::vector<BoolAttribute> Join(std::vector<BoolAttribute> a, const std::vector<BoolAttribute>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

ObjectTemplate HmacSecret() {
  return {CKO_SECRET_KEY,
          Join(SecretCommon(), {IJAZAT_ATTR(CKA_SIGN, true), IJAZAT_ATTR(CKA_VERIFY, false),
                                IJAZAT_ATTR(CKA_ENCRYPT, false), IJAZAT_ATTR(CKA_DECRYPT, false)}),
          GeneratedInside()};
}

ObjectTemplate AesSecret() {
  return {CKO_SECRET_KEY,
          Join(SecretCommon(), {IJAZAT_ATTR(CKA_SIGN, false), IJAZAT_ATTR(CKA_VERIFY, false),
                                IJAZAT_ATTR(CKA_ENCRYPT, true), IJAZAT_ATTR(CKA_DECRYPT, true)}),
          GeneratedInside()};
}

ObjectTemplate SigningPublic() {
  return {CKO_PUBLIC_KEY,
          {IJAZAT_ATTR(CKA_TOKEN, true), IJAZAT_ATTR(CKA_PRIVATE, true),
           IJAZAT_ATTR(CKA_MODIFIABLE, false), IJAZAT_ATTR(CKA_COPYABLE, false),
           IJAZAT_ATTR(CKA_VERIFY, true), IJAZAT_ATTR(CKA_VERIFY_RECOVER, false),
           IJAZAT_ATTR(CKA_ENCRYPT, false), IJAZAT_ATTR(CKA_WRAP, false),
           IJAZAT_ATTR(CKA_DERIVE, false)},
          {IJAZAT_ATTR(CKA_LOCAL, true)}};
}

ObjectTemplate SigningPrivate() {
  return {CKO_PRIVATE_KEY,
          {IJAZAT_ATTR(CKA_TOKEN, true), IJAZAT_ATTR(CKA_PRIVATE, true),
           IJAZAT_ATTR(CKA_SENSITIVE, true), IJAZAT_ATTR(CKA_EXTRACTABLE, false),
           IJAZAT_ATTR(CKA_MODIFIABLE, false), IJAZAT_ATTR(CKA_COPYABLE, false),
           IJAZAT_ATTR(CKA_SIGN, true), IJAZAT_ATTR(CKA_SIGN_RECOVER, false),
           IJAZAT_ATTR(CKA_DECRYPT, false), IJAZAT_ATTR(CKA_UNWRAP, false),
           IJAZAT_ATTR(CKA_DERIVE, false)},
          GeneratedInside()};
}

#undef IJAZAT_ATTR

std::vector<KeyTemplate> MakeTemplates() {
  // DER-encoded OIDs: prime256v1 (1.2.840.10045.3.1.7) and id-Ed25519 (1.3.101.112).
  const Bytes kP256Oid = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  const Bytes kEd25519Oid = {0x06, 0x03, 0x2b, 0x65, 0x70};
  const Bytes kEd25519Name = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                              'd',  's',  '2', '5', '5', '1', '9'};
  return {
      {KeyKind::kOtp,
       CKK_GENERIC_SECRET,
       CKM_GENERIC_SECRET_KEY_GEN,
       CKM_SHA256_HMAC,
       32,
       {},
       {},
       false,
       {HmacSecret()}},
      {KeyKind::kReceipt,
       CKK_EC,
       CKM_EC_KEY_PAIR_GEN,
       CKM_ECDSA,
       0,
       kP256Oid,
       {},
       true,
       {SigningPublic(), SigningPrivate()}},
      {KeyKind::kIndex,
       CKK_GENERIC_SECRET,
       CKM_GENERIC_SECRET_KEY_GEN,
       CKM_SHA256_HMAC,
       32,
       {},
       {},
       false,
       {HmacSecret()}},
      {KeyKind::kData, CKK_AES, CKM_AES_KEY_GEN, CKM_AES_GCM, 32, {}, {}, false, {AesSecret()}},
      {KeyKind::kLog,
       CKK_EC_EDWARDS,
       CKM_EC_EDWARDS_KEY_PAIR_GEN,
       CKM_EDDSA,
       0,
       kEd25519Oid,
       {kEd25519Name},
       true,
       {SigningPublic(), SigningPrivate()}},
  };
}

}  // namespace

const KeyTemplate& TemplateFor(KeyKind kind) {
  static const std::vector<KeyTemplate> templates = MakeTemplates();
  for (const auto& t : templates) {
    if (t.kind == kind) return t;
  }
  return templates.front();
}

std::string ObjectClassName(CK_OBJECT_CLASS object_class) {
  switch (object_class) {
    case CKO_SECRET_KEY:
      return "secret key";
    case CKO_PRIVATE_KEY:
      return "private key";
    case CKO_PUBLIC_KEY:
      return "public key";
    case CKO_DATA:
      return "data";
    default:
      return "object class " + std::to_string(object_class);
  }
}

std::string KeyTypeName(CK_KEY_TYPE key_type) {
  switch (key_type) {
    case CKK_GENERIC_SECRET:
      return "CKK_GENERIC_SECRET";
    case CKK_AES:
      return "CKK_AES";
    case CKK_EC:
      return "CKK_EC";
    case CKK_EC_EDWARDS:
      return "CKK_EC_EDWARDS";
    case CKK_RSA:
      return "CKK_RSA";
    default: {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "CKK_0x%lx", key_type);
      return buffer;
    }
  }
}

std::string MechanismName(CK_MECHANISM_TYPE mechanism) {
  switch (mechanism) {
    case CKM_SHA256_HMAC:
      return "CKM_SHA256_HMAC";
    case CKM_SHA_1_HMAC:
      return "CKM_SHA_1_HMAC";
    case CKM_SHA384_HMAC:
      return "CKM_SHA384_HMAC";
    case CKM_SHA512_HMAC:
      return "CKM_SHA512_HMAC";
    case CKM_ECDSA:
      return "CKM_ECDSA";
    case CKM_ECDSA_SHA256:
      return "CKM_ECDSA_SHA256";
    case CKM_AES_GCM:
      return "CKM_AES_GCM";
    case CKM_AES_CBC:
      return "CKM_AES_CBC";
    case CKM_AES_ECB:
      return "CKM_AES_ECB";
    case CKM_EDDSA:
      return "CKM_EDDSA";
    case CKM_RSA_PKCS:
      return "CKM_RSA_PKCS";
    default: {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "CKM_0x%lx", mechanism);
      return buffer;
    }
  }
}

}  // namespace ijazat::hsm
