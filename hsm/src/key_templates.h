// The attribute templates every key kind is created with and audited against.
#pragma once

#include <string>
#include <vector>

#include "ijazat/common/bytes.h"
#include "ijazat/hsm/key_model.h"
#include "pkcs11.h"

namespace ijazat::hsm {

struct BoolAttribute {
  CK_ATTRIBUTE_TYPE type;
  const char* name;
  bool value;
};

struct ObjectTemplate {
  CK_OBJECT_CLASS object_class;
  // Set at creation and checked by the audit.
  std::vector<BoolAttribute> settable;
  // Set by the token itself when the key is generated inside it and never exposed
  // (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE); checked by the audit only.
  std::vector<BoolAttribute> derived;
};

struct KeyTemplate {
  KeyKind kind;
  CK_KEY_TYPE key_type;
  CK_MECHANISM_TYPE generation_mechanism;
  CK_MECHANISM_TYPE allowed_mechanism;
  CK_ULONG value_length;  // secret keys: bytes; 0 for key pairs
  Bytes ec_params;        // key pairs: DER of the curve, as given at generation
  // Other encodings of the same curve a token may report back (SoftHSM names Ed25519 by the
  // PrintableString "edwards25519" whichever form it was given).
  std::vector<Bytes> ec_params_aliases;
  bool key_pair;
  // Secret key, or [public key, private key].
  std::vector<ObjectTemplate> objects;
};

const KeyTemplate& TemplateFor(KeyKind kind);

std::string ObjectClassName(CK_OBJECT_CLASS object_class);
std::string KeyTypeName(CK_KEY_TYPE key_type);
std::string MechanismName(CK_MECHANISM_TYPE mechanism);

}  // namespace ijazat::hsm
