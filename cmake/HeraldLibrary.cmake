# Warnings for project code. Designated initializers that leave members to their defaults are
# the intended style (GCC's -Wmissing-field-initializers flags them); GCC 12 also reports false
# -Wrestrict positives inside std::string (GCC bug 105329).
set(HERALD_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND HERALD_WARNINGS -Wno-restrict)
endif()

# herald_library(NAME SRCS ... DEPS ... [PUBLIC_DEPS ...] [NO_INSTALL])
# Makes the static library herald_<NAME> with the alias herald::<NAME>. Project code links only
# aliases, so the dependency graph of components reads as a DAG from common up to engine.
function(herald_library)
  cmake_parse_arguments(ARG "NO_INSTALL" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  set(target herald_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SRCS})
  add_library(herald::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
  target_compile_options(${target} PRIVATE ${HERALD_WARNINGS})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME})
  if(NOT ARG_NO_INSTALL)
    install(TARGETS ${target} EXPORT heraldTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endif()
endfunction()

# herald_test(NAME SRCS ... DEPS ... [LABELS ...]): one GoogleTest binary per component.
function(herald_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_options(${ARG_NAME} PRIVATE ${HERALD_WARNINGS})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}"
    ENVIRONMENT "HERALD_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
