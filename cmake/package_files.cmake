# Run at install time (cpack, `make package`): the files made from the built binary itself, so
# they cannot drift from it. BIN and OUT are set by the install(CODE) line in CMakeLists.txt.
#  - /etc/creatord/creatord.conf: every option with its help, at its default, except the two the
#    package decides (the data folder and the tokens file).
#  - creatord(1): help2man over `creatord --help` and `--version`.
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${BIN} --data-dir /var/lib/creatord --api-tokens-file /etc/creatord/tokens config-template
                OUTPUT_FILE ${OUT}/creatord.conf RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "creatord config-template failed: ${rc}")
endif()
find_program(HELP2MAN help2man REQUIRED)
execute_process(COMMAND ${HELP2MAN} --no-info --section 1 --name "creators, images and generation jobs over a JSON HTTP API"
                        --output ${OUT}/creatord.1 ${BIN} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed: ${rc}")
endif()
execute_process(COMMAND gzip -9nf ${OUT}/creatord.1 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed: ${rc}")
endif()
file(INSTALL ${OUT}/creatord.conf DESTINATION /etc/creatord FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL ${OUT}/creatord.1.gz DESTINATION ${CMAKE_INSTALL_PREFIX}/share/man/man1
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
