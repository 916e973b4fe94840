# RunGolden.cmake — runs nnc once and compares one output stream with a file.
#
#   cmake -DNNC=… -DARGS="a;b" -DEXPECTED=file -DACTUAL=file -DSTREAM=stdout|stderr -DEXIT=n
#         [-DOTHER_EMPTY=1] -P RunGolden.cmake        (in the test's directory)
#
# On a mismatch the actual output is written to ACTUAL (in the build tree) and
# the difference is printed.
#
# With UPDATE_GOLDEN=1 in the environment it rewrites EXPECTED instead of
# comparing. The exit status is always checked.
execute_process(COMMAND ${NNC} ${ARGS}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(STREAM STREQUAL "stderr")
  set(actual "${err}")
  set(other "${out}")
else()
  set(actual "${out}")
  set(other "${err}")
endif()
if(NOT "${rc}" STREQUAL "${EXIT}")
  message(FATAL_ERROR "nnc ${ARGS}: exit status ${rc}, expected ${EXIT}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(OTHER_EMPTY AND NOT "${other}" STREQUAL "")
  message(FATAL_ERROR "nnc ${ARGS}: expected nothing on the other stream but got:\n${other}")
endif()
if("$ENV{UPDATE_GOLDEN}" STREQUAL "1")
  file(WRITE "${EXPECTED}" "${actual}")
  message(STATUS "updated ${EXPECTED}")
  return()
endif()
if(NOT EXISTS "${EXPECTED}")
  message(FATAL_ERROR "missing ${EXPECTED}; run with UPDATE_GOLDEN=1 to create it\nactual:\n${actual}")
endif()
file(READ "${EXPECTED}" expected)
if(NOT "${actual}" STREQUAL "${expected}")
  file(WRITE "${ACTUAL}" "${actual}")
  execute_process(COMMAND diff -u "${EXPECTED}" "${ACTUAL}" OUTPUT_VARIABLE diff)
  message(FATAL_ERROR "nnc ${ARGS}: output differs from ${EXPECTED}\n${diff}")
endif()
