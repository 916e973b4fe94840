# RunCase.cmake — runs one case of the bad-input catalogue (see README.md).
#
#   cmake -DNNC=nnc -DCASE=cases/X.case -DINPUTS=inputs -DSCRATCH=dir -P RunCase.cmake
#
# A case file is a few header lines, then the line "--- stderr" and the
# exact text nnc must print on stderr through the end of the file:
#
#   # what the case checks (comments, any number)
#   args: nnc's arguments, quoted as in a shell; @TMP@ is a scratch directory
#   copy: FROM TO        (optional, repeatable: FROM in inputs/, TO under @TMP@)
#   exit: the exit status
#   --- stderr
#   …
#
# nnc runs in inputs/; stdout must be empty. Before comparing, the scratch
# directory's path in stderr becomes @TMP@ and "in 123 ms" becomes "in N ms".
# With UPDATE_GOLDEN=1 in the environment the stderr part of the case file
# is rewritten instead (the exit status is still checked).
file(READ "${CASE}" text)
string(FIND "${text}" "\n--- stderr\n" at)
if(at LESS 0)
  message(FATAL_ERROR "${CASE}: no line \"--- stderr\"")
endif()
string(SUBSTRING "${text}" 0 ${at} head)
math(EXPR start "${at} + 12")
string(SUBSTRING "${text}" ${start} -1 expected)

file(REMOVE_RECURSE "${SCRATCH}")
file(MAKE_DIRECTORY "${SCRATCH}")
set(args_text "")
set(exit "")
string(REPLACE "\n" ";" lines "${head}")
foreach(line IN LISTS lines)
  string(REPLACE "@TMP@" "${SCRATCH}" line "${line}")
  if(line MATCHES "^args: (.*)$")
    set(args_text "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^exit: ([0-9]+)$")
    set(exit "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^copy: ([^ ]+) ([^ ]+)$")
    file(COPY_FILE "${INPUTS}/${CMAKE_MATCH_1}" "${CMAKE_MATCH_2}")
  elseif(NOT line MATCHES "^#" AND NOT line STREQUAL "")
    message(FATAL_ERROR "${CASE}: cannot read the line \"${line}\"")
  endif()
endforeach()
if(exit STREQUAL "")
  message(FATAL_ERROR "${CASE}: no \"exit:\" line")
endif()
separate_arguments(args UNIX_COMMAND "${args_text}")

execute_process(COMMAND ${NNC} ${args} WORKING_DIRECTORY "${INPUTS}"
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
string(REPLACE "${SCRATCH}" "@TMP@" err "${err}")
string(REGEX REPLACE " in [0-9]+ ms\n" " in N ms\n" err "${err}")
if(NOT "${rc}" STREQUAL "${exit}")
  message(FATAL_ERROR "nnc ${args_text}: exit status ${rc}, expected ${exit}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT "${out}" STREQUAL "")
  message(FATAL_ERROR "nnc ${args_text}: expected nothing on stdout but got:\n${out}")
endif()
if("$ENV{UPDATE_GOLDEN}" STREQUAL "1")
  file(WRITE "${CASE}" "${head}\n--- stderr\n${err}")
  message(STATUS "updated ${CASE}")
  return()
endif()
if(NOT "${err}" STREQUAL "${expected}")
  file(WRITE "${SCRATCH}.actual" "${err}")
  file(WRITE "${SCRATCH}.expected" "${expected}")
  execute_process(COMMAND diff -u "${SCRATCH}.expected" "${SCRATCH}.actual" OUTPUT_VARIABLE diff)
  message(FATAL_ERROR "nnc ${args_text}: stderr differs from ${CASE}\n${diff}")
endif()
