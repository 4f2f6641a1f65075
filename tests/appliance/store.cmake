# Tests of the SQLite consent store and the identity registry (included by
# tests/appliance/CMakeLists.txt). Real SQLite files in a temporary directory, no mocks.
find_package(Threads REQUIRED)

ijazat_add_test_executable(store_tests
  ${CMAKE_CURRENT_LIST_DIR}/store_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/group_commit_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/sqlite_db_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/registry_test.cc
  CONCURRENCY_TESTS
    SqliteStoreTest.RecordFailedAttempt_LandsEveryAttempt_FromFourThreads
    SqliteStoreTest.SecondStoreOnSameFile_SeesCommits_AndGrantsStaySingleUse
    GroupCommitTest.ManyConcurrentWriters_AllLand_InFewerCommits_WithTheChainIntact)
# SQLite::SQLite3 comes with Poco's DataSQLite package: the tests tamper with files directly.
target_link_libraries(store_tests PRIVATE ijazat_store SQLite::SQLite3 Threads::Threads)
target_compile_definitions(store_tests PRIVATE
  IJAZAT_DEMO_REGISTRY_CSV="${CMAKE_CURRENT_LIST_DIR}/../../appliance/demo/registry.csv")
# The CLI tests run the built program.
add_dependencies(store_tests ijazat-registry)
