# install-etc-unit.cmake - runs at install time (install(SCRIPT) in CMakeLists.txt), so it sees the
# prefix of *this* install: `cmake --install build --prefix DIR` sets CMAKE_INSTALL_PREFIX to DIR
# here, whatever the build was configured with, and file(INSTALL) adds $DESTDIR. It installs the two
# things whose place or content depends on that prefix:
#   - the runnable trigger file, as SYSCONFDIR/triggerd/triggerd.yaml, where SYSCONFDIR is /etc
#     for the prefixes / and /usr (as GNUInstallDirs has it) and PREFIX/etc for any other (also
#     /opt/X, unlike GNUInstallDirs' /etc/opt/X: nothing is written outside the prefix);
#   - the systemd unit, with the binary, the trigger files, the environment file and the README
#     at the paths this install gives them.
# Set by CMakeLists.txt (install(CODE)): TD_SOURCE_DIR, TD_BINARY_DIR, TD_BINDIR, TD_SYSCONFDIR, TD_DOCDIR,
# TD_UNITDIR (GNUInstallDirs' values: relative to the prefix, or absolute when the user said so).

set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")

# td_full(VAR DIR [SYSCONF]): DIR made absolute for this prefix.
function(td_full var dir)
  if(IS_ABSOLUTE "${dir}")
    set(full "${dir}")
  elseif(ARGN AND (prefix STREQUAL "/" OR prefix STREQUAL "/usr"))
    set(full "/${dir}")
  elseif(prefix STREQUAL "/")
    set(full "/${dir}")
  else()
    set(full "${prefix}/${dir}")
  endif()
  set(${var} "${full}" PARENT_SCOPE)
endfunction()

td_full(bindir "${TD_BINDIR}")
td_full(sysconfdir "${TD_SYSCONFDIR}" SYSCONF)
td_full(docdir "${TD_DOCDIR}")
td_full(unitdir "${TD_UNITDIR}")

file(INSTALL "${TD_SOURCE_DIR}/conf/examples/redis-to-http.yaml"
     DESTINATION "${sysconfdir}/triggerd" RENAME triggerd.yaml)

# The unit in the source tree is written for the /usr layout; the paths are replaced, longest first.
file(READ "${TD_SOURCE_DIR}/systemd/triggerd.service" unit)
string(REPLACE "/usr/bin/triggerd" "${bindir}/triggerd" unit "${unit}")
string(REPLACE "/etc/default/triggerd" "${sysconfdir}/default/triggerd" unit "${unit}")
string(REPLACE "/etc/triggerd" "${sysconfdir}/triggerd" unit "${unit}")
string(REPLACE "/usr/share/doc/triggerd" "${docdir}" unit "${unit}")
set(generated "${TD_BINARY_DIR}/install-unit/triggerd.service")
file(WRITE "${generated}" "${unit}")
file(INSTALL "${generated}" DESTINATION "${unitdir}")
