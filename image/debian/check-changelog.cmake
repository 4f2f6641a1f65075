# Run by cpack before it builds the package (CPACK_PRE_BUILD_SCRIPTS, image/packaging.cmake):
# the newest entry of image/debian/changelog must be the version being packaged.
set(_version ${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
file(STRINGS ${CPACK_IJAZAT_CHANGELOG} _top LIMIT_COUNT 1)
if(NOT _top MATCHES "^ijazat \\(${_version}\\) ")
  message(FATAL_ERROR "${CPACK_IJAZAT_CHANGELOG}: the newest entry is \"${_top}\", not version "
                      "${_version}: add an entry for it before packaging")
endif()
