# The consent store (SQLite through POCO Data, its hot statements through SQLite's C API), the identity registry, ijazat-registry and ijazat-audit.
# Included by appliance/CMakeLists.txt; self-contained, paths relative to this file.
find_package(Poco REQUIRED COMPONENTS Foundation Data DataSQLite)
find_package(OpenSSL 3.0 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(SQLite3 REQUIRED)

add_library(ijazat_store STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/audit_verify.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/identity.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/model.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sqlite_audit.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sqlite_db.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sqlite_registry.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sqlite_schema.cc
  ${CMAKE_CURRENT_LIST_DIR}/src/sqlite_store.cc)
target_include_directories(ijazat_store PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src)
target_link_libraries(ijazat_store
  PUBLIC ijazat::common ijazat::tlog
  PRIVATE Poco::DataSQLite Poco::Data Poco::Foundation SQLite::SQLite3 OpenSSL::Crypto
          nlohmann_json::nlohmann_json)

add_executable(ijazat-registry ${CMAKE_CURRENT_LIST_DIR}/src/registry_tool.cc)
target_link_libraries(ijazat-registry PRIVATE ijazat_store)
set_target_properties(ijazat-registry PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)

add_executable(ijazat-audit ${CMAKE_CURRENT_LIST_DIR}/src/audit_tool.cc)
target_link_libraries(ijazat-audit PRIVATE ijazat_store)
set_target_properties(ijazat-audit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
