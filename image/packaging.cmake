# The Debian package `ijazat`: install rules and the CPack configuration.
#
# Included from the top-level CMakeLists.txt (`include(image/packaging.cmake)`, after the
# add_subdirectory() calls), or injected into any build without touching it:
#
#   cmake --preset release -B build/pkg -DCMAKE_INSTALL_PREFIX=/usr \
#         -DCMAKE_PROJECT_INCLUDE=$PWD/image/packaging.cmake
#   cmake --build build/pkg -j && (cd build/pkg && cpack)       # -> ijazat_<ver>-1_amd64.deb
#
# Either way the install rules are attached at the end of the top-level directory, once every
# program's target exists. A default install prefix becomes /usr (the Debian layout; with it,
# GNUInstallDirs puts configuration in /etc and state in /var). The package:
#
#   /usr/sbin/ijazatd                     the appliance
#   /usr/bin/ijazat-{provision,policy,verify,registry}
#   /lib/systemd/system/ijazatd.service   image/systemd/ijazatd.service
#   /etc/ijazat/ijazatd.yaml              image/etc/ijazatd.yaml             conffile, 0640
#   /etc/ijazat/policy.yaml               image/etc/policy.yaml (no provider) conffile, 0640
#   /etc/ijazat/softhsm2.conf             SoftHSM token directory            conffile, 0640
#   /usr/share/doc/ijazat/                README, runbooks, OpenAPI document, copyright,
#                                         changelog.Debian.gz (image/debian/)
#   /usr/share/ijazat/registry.csv        the demo identity registry
#   /usr/share/ijazat/subscribers.csv     the demo's subscriber records (numbers bound to CNICs)
#
# image/debian/{postinst,prerm,postrm} create the `ijazat` user, /var/lib/ijazat and the
# modes (/etc/ijazat 0750 root:ijazat), handle the unit, and clean up on purge.
include_guard(GLOBAL)

if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix (the Debian package needs /usr)" FORCE)
endif()
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(WARNING "ijazat package: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; the Debian "
                  "package needs /usr (configure with -DCMAKE_INSTALL_PREFIX=/usr)")
endif()
include(GNUInstallDirs)

set(IJAZAT_IMAGE_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(IJAZAT_REPO_DIR ${CMAKE_CURRENT_LIST_DIR} DIRECTORY)
set(IJAZAT_STAGE_DIR ${PROJECT_BINARY_DIR}/image)

# Paths as the package holds them. With the /usr prefix: /etc/ijazat, /lib/systemd/system.
set(IJAZAT_CONF_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ijazat)
set(IJAZAT_STATE_DIR ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/ijazat)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(IJAZAT_UNIT_DIR /lib/systemd/system)  # Debian 12; usrmerge makes it /usr/lib too
else()
  set(IJAZAT_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()

# SoftHSM's configuration for the packaged token: tokens in the state directory, where the
# service (ProtectSystem=strict, StateDirectory=ijazat) may write.
file(CONFIGURE OUTPUT ${IJAZAT_STAGE_DIR}/softhsm2.conf @ONLY CONTENT
"# SoftHSM configuration of the appliance's token (SOFTHSM2_CONF in ijazatd.service).
# Only used when hsm.module in ijazatd.yaml is SoftHSM. Run ijazat-provision as the ijazat
# user with SOFTHSM2_CONF=@IJAZAT_CONF_DIR@/softhsm2.conf (docs/operations.md).
directories.tokendir = @IJAZAT_STATE_DIR@/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
")

# dpkg keeps an administrator's edits of these across upgrades (and asks when both changed).
set(IJAZAT_CONFFILES
  ${IJAZAT_CONF_DIR}/ijazatd.yaml
  ${IJAZAT_CONF_DIR}/policy.yaml
  ${IJAZAT_CONF_DIR}/softhsm2.conf)
list(JOIN IJAZAT_CONFFILES "\n" _ijazat_conffiles)
file(CONFIGURE OUTPUT ${IJAZAT_STAGE_DIR}/conffiles CONTENT "${_ijazat_conffiles}\n")

# Install rules for the programs, deferred to the end of the top-level directory so that the
# targets exist whichever way this file was included.
function(ijazat_install_programs)
  install(TARGETS ijazatd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
  install(TARGETS ijazat-provision ijazat-policy ijazat-verify ijazat-registry ijazat-audit
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL ijazat_install_programs)

set(_ijazat_conf_mode OWNER_READ OWNER_WRITE GROUP_READ)
install(DIRECTORY DESTINATION ${IJAZAT_CONF_DIR}
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
install(FILES ${IJAZAT_IMAGE_DIR}/etc/ijazatd.yaml ${IJAZAT_STAGE_DIR}/softhsm2.conf
        DESTINATION ${IJAZAT_CONF_DIR} PERMISSIONS ${_ijazat_conf_mode})
install(FILES ${IJAZAT_IMAGE_DIR}/etc/policy.yaml
        DESTINATION ${IJAZAT_CONF_DIR} PERMISSIONS ${_ijazat_conf_mode})
install(FILES ${IJAZAT_IMAGE_DIR}/systemd/ijazatd.service DESTINATION ${IJAZAT_UNIT_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES
          ${IJAZAT_REPO_DIR}/README.md
          ${IJAZAT_REPO_DIR}/docs/operations.md
          ${IJAZAT_REPO_DIR}/docs/provisioning.md
          ${IJAZAT_REPO_DIR}/docs/policy.md
          ${IJAZAT_REPO_DIR}/docs/consent-token.md
          ${IJAZAT_REPO_DIR}/docs/openapi.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${IJAZAT_REPO_DIR}/appliance/demo/registry.csv
              ${IJAZAT_REPO_DIR}/appliance/demo/subscribers.csv
        DESTINATION ${CMAKE_INSTALL_DATADIR}/ijazat)

# Debian's documentation of a binary package: the copyright file, and the changelog compressed
# with gzip -9n (no name or time stamp: the same bytes every build). cpack refuses to package
# a version that the changelog's newest entry does not describe (debian/check-changelog.cmake).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${IJAZAT_IMAGE_DIR}/debian/changelog)
execute_process(COMMAND gzip -9nc ${IJAZAT_IMAGE_DIR}/debian/changelog
                OUTPUT_FILE ${IJAZAT_STAGE_DIR}/changelog.Debian.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${IJAZAT_IMAGE_DIR}/debian/copyright ${IJAZAT_STAGE_DIR}/changelog.Debian.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# lintian's overrides for what the package does on purpose (the modes of /etc/ijazat).
install(FILES ${IJAZAT_IMAGE_DIR}/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME ijazat)

# CPack: one binary package, ijazat_<version>-<release>_<arch>.deb.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ijazat)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Ijazat")
set(CPACK_PACKAGE_CONTACT "Ijazat maintainers <maintainers@users.noreply.r-seed-5d2b8733.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "HSM-backed consent appliance")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)  # keep image/debian/changelog's newest entry in step
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Ijazat asks a citizen's consent, by a one-time code sent by SMS, before a
service provider may have the citizen's identity (CNIC) verified. Its OTP and
signing keys stay inside a PKCS#11 HSM (SoftHSM or a network HSM); provider
policies are YAML; consent tokens and receipts are signed JWS that anyone can
verify offline.
.
This package holds the appliance (ijazatd, a hardened systemd service), the
key-ceremony tool (ijazat-provision), the policy checker (ijazat-policy), the
offline verifier (ijazat-verify), the identity-registry importer
(ijazat-registry) and the audit-chain verifier (ijazat-audit).")
# Debian 12 (bookworm) packages: what `dpkg-shlibdeps` finds in the five binaries, plus
# adduser (postinst) and SQLite (the store, through libpocodatasqlite80). Check again after
# linking a new library: dpkg-shlibdeps -O build/<dir>/bin/* (run in a dir with debian/control).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "adduser, libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), libssl3 (>= 3.0.0), libyaml-cpp0.7 (>= 0.7.0), libpocofoundation80 (>= 1.11.0), libpoconet80 (>= 1.11.0), libpoconetssl80 (>= 1.11.0), libpocodata80 (>= 1.11.0), libpocodatasqlite80 (>= 1.11.0), libsqlite3-0")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "softhsm2, sqlite3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "opensc, curl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${IJAZAT_IMAGE_DIR}/debian/postinst
  ${IJAZAT_IMAGE_DIR}/debian/prerm
  ${IJAZAT_IMAGE_DIR}/debian/postrm
  ${IJAZAT_STAGE_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_IJAZAT_CHANGELOG ${IJAZAT_IMAGE_DIR}/debian/changelog)
set(CPACK_PRE_BUILD_SCRIPTS ${IJAZAT_IMAGE_DIR}/debian/check-changelog.cmake)
set(CPACK_SOURCE_GENERATOR TXZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build/" "/var/")
include(CPack)
